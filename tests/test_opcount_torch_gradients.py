"""load_torch where the gradient is easy to get wrong: a detach, ``.data`` or ``torch.no_grad``
stops it; a gather by a tensor index adds into its source's gradient; a comparison returns none;
a recurrent layer's backward does not depend on which of its outputs the loss reads; frozen
parameters and weight parametrizations are reported. Every count is checked against a hand count
(adds) and, where FlopCounterMode sees the products, against it on meta tensors."""
import warnings

import pytest

import opcount

from .test_opcount_formulas import FAKE

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

N = 3


def load(module, inputs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return opcount.load_torch(module, inputs)


def training(ir, batch=N):
    result = opcount.count_model(ir, FAKE, phase="training", batch=batch)
    assert result.complete
    return result


def fcm_training_flops(module, inputs):
    """FlopCounterMode's forward + backward FLOPs of ``module`` on meta copies of ``inputs``."""
    meta = module.to("meta")
    args = tuple(torch.empty(t.shape, dtype=t.dtype, device="meta") for t in inputs)
    with FlopCounterMode(display=False) as counter:
        y = meta(*args)
        y.sum().backward()
    return counter.get_total_flops()


def stage(result, name, which="backward"):
    return next(layer for layer in result.layers if layer.name == name).stages[which]


# --- detach, .data, torch.no_grad ------------------------------------------------------------------

class Stopped(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how = how
        self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x):
        if self.how == "no_grad":
            with torch.no_grad():
                y = torch.relu(self.fc1(x))
        else:
            y = torch.relu(self.fc1(x))
            if self.how == "detach":
                y = y.detach()
            elif self.how == "data":
                y = y.data
        return self.fc2(y)


@pytest.mark.parametrize("how", ["detach", "data", "no_grad", "none"])
def test_detach_data_and_no_grad_stop_the_gradient(how):
    torch.manual_seed(0)
    module = Stopped(how)
    x = torch.randn(1, 3)
    ir = load(module, x)
    result = training(ir)
    # under torch.no_grad fc1's parameters get no gradient: no update either (the optimizer
    # skips a parameter whose grad is None), as for a frozen layer
    assert bool(ir.layer("fc1").attrs.get("frozen")) == (how == "no_grad")
    assert any(stage(result, "fc1", "update").values()) == (how != "no_grad")
    forward = N * (3 * 4 + 4 * 2)
    backward = N * (3 * 4 + 4 * 2 * 2) if how == "none" else N * 4 * 2     # fc2's weight gradient only
    assert result.macs == forward + backward
    assert fcm_training_flops(Stopped(how), (x.expand(N, 3),)) == 2 * (forward + backward)
    if how == "none":
        return
    # nothing runs backward before fc2, and fc2 computes its weight and bias gradients only:
    # dW N*2*4 mul, (N-1)*2*4 add; db (N-1)*2 add
    for layer in result.layers:
        if layer.name not in ("fc2", "loss"):
            assert not any(layer.stages["backward"].values()), layer.name
    back = stage(result, "fc2")
    assert back["mul"] == N * 8 and back["add"] == (N - 1) * 8 + (N - 1) * 2


def test_comparison_returns_no_gradient():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x):
            y = self.fc(x)
            return y.masked_fill(y < 0, 0.0) * 2.0
    result = training(load(Gate(), torch.randn(1, 3)))
    # y is read by the comparison (no gradient) and by masked_fill: no gradient sum, so the linear's
    # backward is its weight and bias gradients alone
    back = stage(result, "fc")
    assert back["add"] == (N - 1) * 12 + (N - 1) * 4 and back["mul"] == N * 12


# --- gathers by a tensor index -------------------------------------------------------------------------

class Gather(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how = how
        self.fc = nn.Linear(2, 4)
        self.register_buffer("index", torch.tensor([0, 3, 3, 1, 4]))

    def forward(self, x):                  # x [N, 6, 2] -> y [N, 6, 4]
        y = self.fc(x)
        if self.how == "getitem":
            z = y[:, self.index]
        elif self.how == "index_select":
            z = torch.index_select(y, 1, self.index)
        else:
            z = torch.gather(y, 1, self.index.view(1, 5, 1).expand(y.shape[0], 5, 4))
        return z * 3.0


@pytest.mark.parametrize("how", ["getitem", "index_select", "gather"])
def test_gather_of_an_activation_adds_into_its_gradient(how):
    ir = load(Gather(how), torch.randn(1, 6, 2))
    gather = [layer for layer in ir.layers if layer.attrs.get("grad") == "gather"]
    assert len(gather) == 1
    result = training(ir)
    # the backward scatters the 5 x 4 gathered gradients of each sample into y's zeroed gradient
    assert stage(result, gather[0].name) == dict(stage(result, gather[0].name), add=N * 5 * 4)
    assert stage(result, gather[0].name)["add"] == N * 20
    assert result.macs == fcm_training_flops(Gather(how), (torch.randn(N, 6, 2),)) // 2


def test_learned_position_bias_table_gradient():
    """Swin's relative position bias: a (9, heads) table gathered by a constant index into a
    (heads, 4, 4) bias added to every sample's scores. Backward: the bias gradient summed over the
    batch (N*32 - 32 adds) and scattered into the table (32 adds, one per gathered entry)."""
    class Bias(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2 * 4)
            self.table = nn.Parameter(torch.zeros(9, 2))
            self.register_buffer("index", torch.randint(0, 9, (16,)))

        def forward(self, x):                   # x [N, 4, 3]
            scores = self.fc(x).view(x.shape[0], 4, 2, 4).permute(0, 2, 1, 3)      # [N, 2, 4, 4]
            bias = self.table[self.index].view(4, 4, 2).permute(2, 0, 1)
            return scores + bias.unsqueeze(0)
    ir = load(Bias(), torch.randn(1, 4, 3))
    assert ir.params == 8 * 3 + 8 + 18
    result = training(ir)
    gather = next(layer for layer in ir.layers if layer.attrs.get("grad") == "gather")
    add = next(layer for layer in ir.layers if layer.type == "elementwise")
    assert stage(result, gather.name)["add"] == 32
    assert stage(result, add.name)["add"] == N * 32 - 32


def test_repeat_interleave_sums_its_copies():
    class Rep(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 4)

        def forward(self, x):
            return self.fc(x).repeat_interleave(3, dim=1) * 2.0
    result = training(load(Rep(), torch.randn(1, 5, 2)))
    layer = next(layer for layer in result.layers if layer.type == "shape_op")
    assert layer.stages["backward"]["add"] == N * (5 * 12 - 5 * 4)


def test_where_sums_a_broadcast_operand():
    class Where(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)
            self.fill = nn.Parameter(torch.zeros(4))

        def forward(self, x):                    # x [N, 5, 3]
            y = self.fc(x)
            return torch.where(y > 0, y, self.fill)
    result = training(load(Where(), torch.randn(1, 5, 3)))
    where = next(layer for layer in result.layers if layer.name.startswith("where"))
    # the fill's gradient is summed over N*5 rows; y's needs no sum; the comparison returns none
    assert where.stages["backward"]["add"] == N * 5 * 4 - 4
    assert stage(result, "fc")["add"] == (N * 5 - 1) * 12 + (N * 5 - 1) * 4


# --- recurrent layers --------------------------------------------------------------------------------

class Recurrent(nn.Module):
    def __init__(self, reads):
        super().__init__()
        self.reads = reads
        self.rnn = nn.LSTM(2, 3, num_layers=2, batch_first=True)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        out, (h, c) = self.rnn(x)
        if self.reads == "all":
            return self.fc(out)
        if self.reads == "last":
            return self.fc(out[:, -1])
        if self.reads == "h_n":
            return self.fc(h[-1])
        return self.fc(out[:, -1] + h[0] + c[1])


@pytest.fixture(scope="module")
def recurrent_counts():
    out = {}
    for reads in ("all", "last", "states", "h_n"):
        ir = load(Recurrent(reads), torch.randn(1, 4, 2))
        out[reads] = (ir, training(ir))
    return out


def test_lstm_backward_runs_through_every_step(recurrent_counts):
    """Only the last step's output reaches the loss: the other steps' output gradients are zeros,
    but backpropagation through time still runs every step and adds them (PyTorch's autograd
    materializes the zeros), so the LSTM's backward is the same as when every step is read."""
    everything, last = recurrent_counts["all"][1], recurrent_counts["last"][1]
    assert stage(everything, "rnn") == stage(last, "rnn")
    assert stage(everything, "rnn", "forward") == stage(last, "rnn", "forward")
    # and the MACs are FlopCounterMode's (the products of every step, forward and backward)
    for reads in ("last", "h_n"):
        assert recurrent_counts[reads][1].macs == fcm_training_flops(Recurrent(reads), (torch.randn(N, 4, 2),)) // 2


def test_lstm_final_states_add_into_the_last_steps_gradients(recurrent_counts):
    """h_n and c_n are the last steps' states: a loss reading them adds their gradient into those
    steps' state gradients, 1 add per element of h_n (2 layers x 3) and of c_n (2 x 3); reading
    only h_n, the last layer's steps get no output gradient to add (3 of the 4 steps lose their
    3 h adds) and h_n adds into layer 0's last step only."""
    last, states, h_n = (stage(recurrent_counts[k][1], "rnn") for k in ("last", "states", "h_n"))
    assert states == dict(last, add=last["add"] + N * 2 * 3 + N * 2 * 3)
    assert h_n == dict(last, add=last["add"] - N * 3 * 3 + N * 3)
    ir = recurrent_counts["h_n"][0]
    assert ir.layer("rnn").attrs["output_grad"] is False and ir.layer("rnn").attrs["h_n_grad"] is True


# --- reported, not counted ---------------------------------------------------------------------------

def test_frozen_parameters_are_reported():
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    module[0].weight.requires_grad_(False)
    with pytest.warns(opcount.IncompleteModelWarning, match="requires_grad=False"):
        ir = opcount.load_torch(module, torch.randn(1, 3))
    assert [item["layer"] for item in ir.left_out] == ["0.weight"]
    assert ir.params == 4 * 3 + 4 + 4 * 2 + 2


def test_product_costs_a_backward_only_for_operands_with_a_gradient():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)
            self.scale = nn.Parameter(torch.ones(4))

        def forward(self, x, mask):                      # x [N, 5, 3], mask [N, 5, 4]
            y = (x.sum(-1, keepdim=True) * self.scale) * mask       # model input x: no gradient
            return self.fc(x) * mask + y / (1.0 + mask)
    ir = load(Masked(), (torch.randn(1, 5, 3), torch.ones(1, 5, 4)))
    result = training(ir)
    back = {layer.name: layer.stages["backward"] for layer in result.layers}
    e = N * 5 * 4
    # x.sum * scale: only scale needs one, d(scale) = dy * x.sum (1 mul), summed over N*5 rows
    assert back["mul"] == {**back["mul"], "mul": e, "add": e - 4}
    # (...) * mask and fc(x) * mask: d(first operand) = dy * mask, 1 mul; the mask gets none
    assert back["mul_1"]["mul"] == e and back["mul_2"]["mul"] == e
    # y / (1 + mask): dy / (1 + mask) for y only, 1 div
    div = next(name for name in back if name.startswith("div") or name.startswith("true_divide"))
    assert back[div] == {**back[div], "div": e, "mul": 0, "sub": 0}


@pytest.mark.parametrize("context", ["no_grad", "inference_mode"])
def test_the_callers_no_grad_context_changes_nothing(context):
    module = Stopped("none")
    expected = training(load(module, torch.randn(1, 3))).totals
    with getattr(torch, context)():
        ir = load(module, torch.randn(1, 3))
    assert training(ir).totals == expected


class LoRA(nn.Module):
    """A frozen embedding and base linear layer (weight and bias) with a trainable low-rank
    adapter beside the linear, and a trainable head."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.base = nn.Linear(6, 6)
        self.a, self.b = nn.Linear(6, 2, bias=False), nn.Linear(2, 6, bias=False)
        self.head = nn.Linear(6, 3)
        for p in list(self.emb.parameters()) + list(self.base.parameters()):
            p.requires_grad_(False)

    def forward(self, i):
        x = self.emb(i)
        return self.head(self.base(x) + self.b(self.a(x)))


def test_frozen_layers_get_no_weight_gradient_and_no_update():
    ir = load(LoRA(), torch.zeros(1, 4, dtype=torch.long))
    assert ir.layer("emb").attrs["frozen"] and ir.layer("base").attrs["frozen"]
    assert ir.params == sum(p.numel() for p in LoRA().parameters())
    result = training(ir)
    assert result.macs == fcm_training_flops(LoRA(), (torch.zeros(N, 4, dtype=torch.long),)) // 2
    stages = {layer.name: layer.stages for layer in result.layers}
    # the embedding's input (ids) and its frozen table need nothing; base's input needs none either
    assert not any(stages["emb"]["backward"].values()) and not any(stages["base"]["backward"].values())
    assert not any(stages["emb"]["update"].values()) and not any(stages["base"]["update"].values())
    # the trainable layers' SGD update: 1 mul and 1 sub per parameter
    trained = 6 * 2 + 2 * 6 + 6 * 3 + 3
    assert sum(s["update"]["mul"] for s in stages.values()) == trained


def test_frozen_layer_between_trainable_ones_passes_the_gradient():
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.Linear(4, 2))
    module[2].requires_grad_(False)
    ir = load(module, torch.randn(1, 3))
    result = training(ir)
    back = stage(result, "2")
    # its input gradient N*4*4 mul, N*4*3 add; no weight or bias gradient
    assert back["mul"] == N * 16 and back["add"] == N * 12
    assert result.macs == fcm_training_flops(module, (torch.randn(N, 3),)) // 2


def test_no_grad_layer_without_a_frozen_formula_is_reported():
    class Norm(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.norm = nn.Linear(3, 4), nn.LayerNorm(4)

        def forward(self, x):
            with torch.no_grad():
                y = self.norm(self.fc(x))
            return y
    with pytest.warns(opcount.IncompleteModelWarning, match="runs without gradient"):
        ir = opcount.load_torch(Norm(), torch.randn(1, 3))
    assert {item["layer"] for item in ir.left_out} == {"norm"} and ir.layer("fc").attrs.get("frozen")


def test_frozen_layer_without_a_frozen_formula_is_reported():
    module = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    module[1].requires_grad_(False)
    with pytest.warns(opcount.IncompleteModelWarning, match="requires_grad=False"):
        ir = opcount.load_torch(module, torch.randn(1, 3))
    assert {item["layer"] for item in ir.left_out} == {"1.weight", "1.bias"}
    with pytest.raises(opcount.ModelError, match=r"'frozen' applies to conv1d, .*, linear layers"):
        opcount.load_model({"input": [3], "layers": [{"type": "relu", "frozen": True}]})
