"""opcount ``lstm``/``gru``/``rnn`` and multi-head ``attention`` layers: parameters against the
torch modules, MACs against ``torch.utils.flop_counter.FlopCounterMode`` on meta tensors
(forward and backward), and every basic op against a naive step-by-step count."""
from collections import Counter

import pytest

import opcount
from opcount import ModelError

from .test_opcount_formulas import FAKE, FakeProfile, OPS

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

nn = torch.nn


def spec_model(input_shape, layers, input_grad=False):
    return opcount.load_model({"name": "m", "input": list(input_shape), "layers": layers, "input_grad": input_grad})


def count(input_shape, layers, batch, phase="training", input_grad=False, profile=FAKE):
    return opcount.count_model(spec_model(input_shape, layers, input_grad), profile, phase=phase, batch=batch)


def meta_flops(make, shapes, grads, pick=lambda out: out[0]):
    """FlopCounterMode FLOPs of forward and backward on meta tensors."""
    with torch.device("meta"):
        module = make()
        xs = [torch.randn(*s, requires_grad=g) for s, g in zip(shapes, grads)]
    with FlopCounterMode(display=False) as forward:
        y = pick(module(*xs))
    with FlopCounterMode(display=False) as backward:
        y.backward(torch.ones_like(y))
    return module, forward.get_total_flops(), backward.get_total_flops()


RNN_CASES = [
    ("lstm", dict(), {}),
    ("lstm", dict(bias=False), {"bias": False}),
    ("lstm", dict(proj_size=2), {"proj": 2}),
    ("lstm", dict(num_layers=2, bidirectional=True), {"layers": 2, "bidirectional": True}),
    ("lstm", dict(num_layers=3, proj_size=3, bidirectional=True), {"layers": 3, "proj": 3, "bidirectional": True}),
    ("gru", dict(), {}),
    ("gru", dict(num_layers=2, bidirectional=True, bias=False), {"layers": 2, "bidirectional": True, "bias": False}),
    ("rnn", dict(), {}),
    ("rnn", dict(nonlinearity="relu", num_layers=2), {"nonlinearity": "relu", "layers": 2}),
    ("rnn", dict(bidirectional=True), {"bidirectional": True}),
]
TORCH_RNN = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


@pytest.mark.parametrize("input_grad", [False, True])
@pytest.mark.parametrize("kind, kwargs, fields", RNN_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(RNN_CASES)])
def test_rnn_params_and_macs_match_torch(kind, kwargs, fields, input_grad):
    n, t, i, h = 3, 5, 4, 6
    module, torch_forward, torch_backward = meta_flops(
        lambda: getattr(nn, TORCH_RNN[kind])(i, h, batch_first=True, **kwargs), [(n, t, i)], [input_grad])
    result = count([t, i], [{"type": kind, "hidden": h, "name": "r", **fields}], n, input_grad=input_grad)
    layer = result.layers[0]
    assert layer.params == sum(p.numel() for p in module.parameters())
    assert layer.flops["forward"] == torch_forward
    assert layer.flops["backward"] == torch_backward
    assert layer.out_shape == (t, (2 if kwargs.get("bidirectional") else 1) * (kwargs.get("proj_size") or h))


def _cell_ops(kind, i, h, hout, p, bias, act, first_step, recipe):
    """Naive count of one cell step for one sample, forward and backward (no input gradient)."""
    g = {"lstm": 4, "gru": 3, "rnn": 1}[kind] * h
    fwd, bwd = Counter(), Counter()
    # two dot products per gate element, their biases and the join
    fwd.update(mul=g * (i + hout), add=g * (i - 1) + g * (hout - 1) + g + (2 * g if bias else 0))
    if kind == "lstm":
        fwd.update(recipe("sigmoid", "forward", 3 * h) + recipe("tanh", "forward", 2 * h))
        fwd.update(mul=3 * h, add=h)
        if p:
            fwd.update(mul=p * h, add=p * (h - 1))
    elif kind == "gru":
        fwd.update(recipe("sigmoid", "forward", 2 * h) + recipe("tanh", "forward", h))
        fwd.update(mul=2 * h, add=2 * h, sub=h)
    elif act == "relu":
        fwd.update(cmp=h)
    else:
        fwd.update(recipe("tanh", "forward", h))
    later = not first_step
    # backward of this step (the step after it exists unless it is the last one, see caller)
    if kind == "lstm":
        if p:
            bwd.update(mul=2 * h * p, add=h * (p - 1))
        bwd.update(mul=2 * h)
        bwd.update(recipe("tanh", "backward", h) + recipe("sigmoid", "backward", 3 * h)
                   + recipe("tanh", "backward", h))
        bwd.update(mul=3 * h + (h if later else 0))           # df, di, dg, dc_prev
    elif kind == "gru":
        bwd.update(mul=4 * h, sub=h)
        bwd.update(recipe("tanh", "backward", h) + recipe("sigmoid", "backward", 2 * h))
    elif act == "relu":
        bwd.update(cmp=h)
    else:
        bwd.update(recipe("tanh", "backward", h))
    if later:   # gradient to the previous state
        bwd.update(mul=hout * g, add=hout * (g - 1) + (h if kind == "gru" else 0))
    return fwd, bwd


def _recipe(name, direction, times):
    ops = FAKE.recipe_ops(name, direction)
    return Counter({op: n * times for op, n in ops.items()})


@pytest.mark.parametrize("kind, fields", [("lstm", {}), ("lstm", {"proj": 2, "bias": False}), ("gru", {}),
                                          ("rnn", {}), ("rnn", {"nonlinearity": "relu"})])
def test_rnn_ops_match_naive_step_count(kind, fields):
    n, t, i, h = 2, 4, 3, 5
    p = fields.get("proj", 0)
    hout = p or h
    bias = fields.get("bias", True)
    fwd, bwd = Counter(), Counter()
    for _ in range(n):
        for step in range(t):
            f, b = _cell_ops(kind, i, h, hout, p, bias, fields.get("nonlinearity", "tanh"), step == 0, _recipe)
            fwd.update(f)
            bwd.update(b)
            if step < t - 1:            # state gradients arriving from the next step are summed in
                bwd.update(add=hout + (h if kind == "lstm" else 0))
    g = {"lstm": 4, "gru": 3, "rnn": 1}[kind] * h
    rows = n * t
    # weight gradients accumulate over every (sample, step); biases likewise
    bwd.update(mul=g * (i + hout) * rows, add=g * (i + hout) * (rows - 1) + (2 * g * (rows - 1) if bias else 0))
    if p:
        bwd.update(add=p * h * (rows - 1))
    result = count([t, i], [{"type": kind, "hidden": h, "name": "r", **fields}], n)
    layer = result.layers[0]
    assert layer.stages["forward"] == {op: fwd[op] for op in OPS}
    assert layer.stages["backward"] == {op: bwd[op] for op in OPS}
    inference = count([t, i], [{"type": kind, "hidden": h, "name": "r", **fields}], n, phase="inference")
    assert inference.layers[0].stages["forward"] == layer.stages["forward"]
    assert inference.layers[0].stages["backward"] == {op: 0 for op in OPS}


def test_rnn_dropout_and_state_shapes():
    n, t, i, h = 2, 3, 4, 5
    base = count([t, i], [{"type": "lstm", "hidden": h, "layers": 2, "name": "r"}], n).layers[0]
    drop = count([t, i], [{"type": "lstm", "hidden": h, "layers": 2, "dropout": 0.1, "name": "r"}], n).layers[0]
    e = n * t * h                      # one dropout between the two layers
    assert Counter(drop.stages["forward"]) - Counter(base.stages["forward"]) == Counter(cmp=e, mul=e)
    assert Counter(drop.stages["backward"]) - Counter(base.stages["backward"]) == Counter(mul=e)
    inference = count([t, i], [{"type": "lstm", "hidden": h, "layers": 2, "dropout": 0.1}], n, phase="inference")
    assert inference.layers[0].stages["forward"] == count(
        [t, i], [{"type": "lstm", "hidden": h, "layers": 2}], n, phase="inference").layers[0].stages["forward"]
    with pytest.raises(ModelError, match=r"layer 'lstm_0' \(lstm\): h0 shape \[3, 5\] must be \[2, 5\]$"):
        opcount.load_model({"input": [3, h], "layers": [{"type": "lstm", "hidden": h, "layers": 2,
                                                         "inputs": ["input", "input"]}]})
    with pytest.raises(ModelError, match=r"'proj' 5 must be smaller than 'hidden' 5$"):
        opcount.load_model({"input": [3, h], "layers": [{"type": "lstm", "hidden": h, "proj": 5}]})
    with pytest.raises(ModelError, match=r"unknown field 'proj'$"):
        opcount.load_model({"input": [3, h], "layers": [{"type": "gru", "hidden": h, "proj": 2}]})
    with pytest.raises(ModelError, match=r"input shape \[15\] must be \[length, features\]$"):
        opcount.load_model({"input": [15], "layers": [{"type": "rnn", "hidden": h}]})


def test_lstm_initial_state_gradients_match_torch():
    n, t, i, h = 2, 3, 4, 5

    class Seeded(nn.Module):
        def __init__(self):
            super().__init__()
            self.init = nn.Linear(i, 2 * h)
            self.lstm = nn.LSTM(i, h, num_layers=2, batch_first=True)

        def forward(self, x):
            s = self.init(x[:, 0]).reshape(n, 2, h).transpose(0, 1).contiguous()
            return self.lstm(x, (s, s))[0]
    module, torch_forward, torch_backward = meta_flops(Seeded, [(n, t, i)], [False], pick=lambda y: y)
    layers = [{"type": "select", "name": "x0", "inputs": "input"},
              {"type": "linear", "out": 2 * h, "name": "init"},
              {"type": "reshape", "shape": [2, h], "name": "s"},
              {"type": "lstm", "hidden": h, "layers": 2, "inputs": ["input", "s", "s"], "name": "r"}]
    result = count([t, i], layers, n)
    assert result.params == sum(p.numel() for p in module.parameters())
    assert result.flops == torch_forward + torch_backward
    # without a c0 from a trainable layer, the cell gradient at the first step (dc*f) is not needed:
    # N*H mul less per layer
    no_c0 = count([t, i], layers[:3] + [dict(layers[3], inputs=["input", "s"])], n).layers[3]
    with_c0 = result.layers[3]
    assert Counter(with_c0.stages["backward"]) - Counter(no_c0.stages["backward"]) == Counter(mul=2 * n * h)


def _mha(kwargs, need_weights):
    module = nn.MultiheadAttention(8, 2, batch_first=True, **kwargs)

    def call(q, k=None, v=None):
        k = q if k is None else k
        v = k if v is None else v
        return module(q, k, v, need_weights=need_weights)[0]
    return module, call


ATTENTION_CASES = [
    ("self", dict(), [(5, 8)], {}),
    ("self-no-bias", dict(bias=False), [(5, 8)], {"bias": False}),
    ("cross", dict(), [(5, 8), (7, 8)], {}),
    ("kdim-vdim", dict(kdim=3, vdim=6), [(5, 8), (7, 3), (7, 6)], {}),
]


@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize("input_grad", [False, True])
@pytest.mark.parametrize("name, kwargs, shapes, fields", ATTENTION_CASES, ids=[c[0] for c in ATTENTION_CASES])
def test_multihead_attention_matches_torch(name, kwargs, shapes, fields, input_grad, need_weights):
    n = 3
    with torch.device("meta"):
        module, call = _mha(kwargs, need_weights)
        xs = [torch.randn(n, *s, requires_grad=input_grad) for s in shapes]
    with FlopCounterMode(display=False) as forward:
        y = call(*xs)
    with FlopCounterMode(display=False) as backward:
        y.backward(torch.ones_like(y))
    # the inputs as free branches of one model input, so each may have its own shape
    layers = [{"type": "shape_op", "out_shape": list(s), "name": f"in{k}", "inputs": "input"}
              for k, s in enumerate(shapes)]
    layers.append({"type": "attention", "heads": 2, "name": "att", "inputs": [f"in{k}" for k in range(len(shapes))],
                   "weights": "mean" if need_weights else "none", **fields})
    result = count([1], layers, n, input_grad=input_grad)
    att = result.layers[len(shapes)]
    assert att.params == sum(p.numel() for p in module.parameters())
    assert att.flops["forward"] == forward.get_total_flops()
    assert att.flops["backward"] == backward.get_total_flops()


def test_attention_hand_count_cross_and_weights():
    n, t, s, d, kdim, heads = 2, 3, 4, 6, 5, 3
    hd = d // heads
    layers = [{"type": "shape_op", "out_shape": [t, d], "name": "q", "inputs": "input"},
              {"type": "shape_op", "out_shape": [s, kdim], "name": "kv", "inputs": "input"},
              {"type": "attention", "heads": heads, "inputs": ["q", "kv"], "name": "att", "weights": "mean",
               "mask": "additive", "masks": 2, "dropout": 0.1}]
    result = count([1], layers, n, input_grad=True)
    att = result.layers[2]
    bh, scores = n * heads, n * heads * t * s
    exp = FAKE.recipe_ops("exp", "forward")["mul"]
    forward = Counter(
        # q, k, v, out projections with bias
        mul=n * t * d * d + 2 * n * s * d * kdim + n * t * d * d
        # Q K^T, scale, P V, dropout
        + scores * hd + scores + scores * hd + scores + scores * exp,
        add=n * t * d * d + 2 * n * s * d * kdim + n * t * d * d
        + scores * (hd - 1) + bh * t * hd * (s - 1) + scores                        # products, additive mask
        + scores + bh * t * (s - 1) + (heads - 1) * n * t * s,                       # mask merge, softmax, mean
        sub=scores, cmp=bh * t * (s - 1) + scores, div=scores + n * t * s)
    assert att.stages["forward"] == {op: forward[op] for op in OPS}
    # backward: the key/value input's two projection gradients summed: S*kdim adds per sample
    no_share = count([1], layers[:1] + [dict(layers[1], name="k"), dict(layers[1], name="v"),
                                         dict(layers[2], inputs=["q", "k", "v"])], n, input_grad=True).layers[3]
    assert (Counter(att.stages["backward"]) - Counter(no_share.stages["backward"])) == Counter(add=n * s * kdim)
    assert att.params == 2 * d * d + 2 * kdim * d + 4 * d
    inference = count([1], layers, n, phase="inference").layers[2].stages["forward"]
    assert Counter(att.stages["forward"]) - Counter(inference) == Counter(cmp=scores, mul=scores)


def test_rnn_and_attention_from_yaml(tmp_path):
    path = tmp_path / "lm.yaml"
    path.write_text("""name: tiny-lm
input: [6]
loss: cross_entropy
layers:
  - {type: embedding, vocab: 11, dim: 4}
  - {type: lstm, hidden: 5, layers: 2, bidirectional: true, proj: 3}
  - {type: attention, heads: 2, weights: mean}
  - {type: gru, hidden: 4}
  - {type: rnn, hidden: 4, nonlinearity: relu}
  - {type: linear, out: 11}
""")
    model = opcount.load_model(str(path))
    torch_params = sum(p.numel() for m in (nn.Embedding(11, 4), nn.LSTM(4, 5, 2, bidirectional=True, proj_size=3),
                                           nn.MultiheadAttention(6, 2), nn.GRU(6, 4), nn.RNN(4, 4),
                                           nn.Linear(4, 11)) for p in m.parameters())
    assert model.params == torch_params
    assert [layer.out_shape for layer in model.layers] == [(6, 4), (6, 6), (6, 6), (6, 4), (6, 4), (6, 11)]
    result = opcount.count_model(model, FakeProfile(), phase="training", batch=2)
    assert result.complete and model.complete and model.left_out == []


def test_left_out_makes_model_and_count_incomplete():
    model = spec_model([4], [{"type": "linear", "out": 3}])
    assert model.complete
    model.leave_out("cls_token", "parameter", "not owned by a counted layer", params=4)
    assert not model.complete
    result = opcount.count_model(model, FAKE)
    assert not result.complete
    assert result.incomplete == [{"layer": "cls_token", "type": "parameter", "reason": "not owned by a counted layer"}]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("output_grad, h_n_grad, c_n_grad", [(True, True, True), (False, True, False),
                                                           (True, False, True)])
def test_rnn_backward_follows_which_results_get_a_gradient(kind, output_grad, h_n_grad, c_n_grad):
    """Naive step count when the loss reads the final states and maybe not the output: every step
    adds the output's gradient (zeros included) to the next step's only if the output gets one;
    h_n's and c_n's gradients add into the last step's (one add per element each)."""
    n, t, i, h = 2, 4, 3, 5
    c_n_grad = c_n_grad and kind == "lstm"
    bwd = Counter()
    for _ in range(n):
        for step in range(t):
            bwd.update(_cell_ops(kind, i, h, h, 0, True, "tanh", step == 0, _recipe)[1])
            if step < t - 1:
                bwd.update(add=(h if output_grad else 0) + (h if kind == "lstm" else 0))
        bwd.update(add=(h if h_n_grad and output_grad else 0) + (h if c_n_grad else 0))
    g = {"lstm": 4, "gru": 3}[kind] * h
    rows = n * t
    bwd.update(mul=g * (i + h) * rows, add=g * (i + h) * (rows - 1) + 2 * g * (rows - 1))
    fields = {"output_grad": output_grad, "h_n_grad": h_n_grad}
    if kind == "lstm":
        fields["c_n_grad"] = c_n_grad
    result = count([t, i], [{"type": kind, "hidden": h, "name": "r", **fields}], n)
    assert result.layers[0].stages["backward"] == {op: bwd[op] for op in OPS}
