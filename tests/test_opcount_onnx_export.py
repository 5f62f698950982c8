"""ONNX files written by PyTorch's two exporters (TorchScript, ``dynamo=False``, and
``torch.export``, ``dynamo=True``) of attention, recurrent and channels-last models: counted through
the ONNX frontend, they give FlopCounterMode's MACs on meta tensors (forward and training), the
module's parameters, the same counts as ``load_torch`` where it loads the module, and the hand
counts of the layers whose batch axis the exporters move."""
import contextlib
import io
import logging
import math
import warnings

import pytest

import opcount

pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
nn = torch.nn

EXPORTERS = ["torchscript", "dynamo"]


def _export(module, x, path, exporter):
    if exporter == "dynamo":
        pytest.importorskip("onnxscript", reason="the dynamo exporter needs onnxscript")
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (x,), str(path), dynamo=exporter == "dynamo")
    finally:
        quiet.setLevel(level)


def _flop_counter_macs(module, shape, training):
    """MACs of FlopCounterMode on meta tensors: forward, or forward + backward of a sum loss."""
    from torch.utils.flop_counter import FlopCounterMode
    meta = _twin(module).to("meta")
    meta.train(False)
    x = torch.randn(shape, device="meta")
    excess = []

    def grouped(conv, inputs, output):
        # FlopCounterMode prices a grouped convolution's weight gradient as if it were ungrouped,
        # groups times the true count (= the forward MACs); tosim keeps the true count
        if conv.groups > 1:
            excess.append((conv.groups - 1) * output.numel() * conv.weight[0].numel())

    hooks = [m.register_forward_hook(grouped) for m in meta.modules() if isinstance(m, nn.Conv2d)]
    with FlopCounterMode(display=False) as counter:
        out = meta(x)
        if training:
            out.sum().backward()
    for hook in hooks:
        hook.remove()
    return counter.get_total_flops() // 2 - (sum(excess) if training else 0)


def _twin(module):
    import copy
    return copy.deepcopy(module)


def _seeded(module):
    """Distinct random parameters: exporters drop adds of zeros and merge identical initializers
    (a freshly built TransformerEncoder's layers are copies of one another)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    return module.eval()


# --- models ---------------------------------------------------------------------------------------

class SeqFirstAttention(nn.Module):
    """Sequence-first code in a batch-first model: the batch sits on axis 1 inside."""

    def __init__(self, need_weights=False):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4)
        self.need_weights = need_weights

    def forward(self, x):
        x = x.transpose(0, 1)
        y = self.attn(x, x, x, need_weights=self.need_weights)[0]
        return y.transpose(0, 1)


class BatchFirstAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


class Encoder(nn.Module):
    def __init__(self, batch_first=True):
        super().__init__()
        self.batch_first = batch_first
        self.layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=batch_first)

    def forward(self, x):
        if self.batch_first:
            return self.layer(x)
        return self.layer(x.transpose(0, 1)).transpose(0, 1)


class TinyViT(nn.Module):
    """vit_b_16's structure at toy size: patches, class token, position table, pre-norm encoder."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 4, 4)
        self.cls = nn.Parameter(torch.zeros(1, 1, 16))
        self.pos = nn.Parameter(torch.zeros(1, 5, 16))
        layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True, norm_first=True,
                                           activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.encoder(x)[:, 0])


class Recurrent(nn.Module):
    def __init__(self, kind, **kw):
        super().__init__()
        self.rnn = kind(8, 12, batch_first=True, **kw)
        self.fc = nn.Linear(12 * (2 if kw.get("bidirectional") else 1), 3)

    def forward(self, x):
        return self.fc(self.rnn(x)[0])


class LayerNorm2d(nn.LayerNorm):
    """torchvision's LayerNorm2d: channels-last layer norm on an NCHW tensor."""

    def forward(self, x):
        x = nn.functional.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """convnext_tiny's block and head at toy size: depthwise conv, channels-last LayerNorm and MLP,
    layer scale, then torchvision's classifier (global pool, LayerNorm2d, flatten, linear)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 2, 2)
        self.dw = nn.Conv2d(16, 16, 7, padding=3, groups=16)
        self.norm = nn.LayerNorm(16)
        self.fc1, self.fc2 = nn.Linear(16, 64), nn.Linear(64, 16)
        self.gamma = nn.Parameter(torch.ones(16))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(LayerNorm2d(16), nn.Flatten(1), nn.Linear(16, 5))

    def forward(self, x):
        x = self.stem(x)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.fc2(nn.functional.gelu(self.fc1(self.norm(y)))) * self.gamma
        x = x + y.permute(0, 3, 1, 2)
        return self.classifier(self.pool(x))


class SwinHead(nn.Module):
    """swin_t's end: channels-last LayerNorm, permute to NCHW, global pool, flatten, linear (the
    dynamo exporter writes the pooled view as a Gather on the flattened tensor)."""

    def __init__(self):
        super().__init__()
        self.stem, self.norm = nn.Conv2d(3, 16, 4, 4), nn.LayerNorm(16)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(16, 5)

    def forward(self, x):
        x = self.norm(self.stem(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.fc(torch.flatten(self.pool(x), 1))


class WindowAttention(nn.Module):
    """swin_t's window partition and attention at toy size (no shift): windows merged into the
    batch axis, attention per window with a qkv linear, then merged back."""

    def __init__(self, dim=16, heads=2, window=2):
        super().__init__()
        self.heads, self.window = heads, window
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.scale = (dim // heads) ** -0.5

    def forward(self, x):                                  # x: (B, H, W, C)
        b, h, w, c = x.shape
        s = self.window
        x = x.view(b, h // s, s, w // s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, s * s, c)
        n = x.shape[0]
        qkv = self.qkv(x).reshape(n, s * s, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        y = (attn.softmax(-1) @ v).transpose(1, 2).reshape(n, s * s, c)
        y = self.proj(y).view(b, h // s, w // s, s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        return y


CASES = {
    "seq-first-mha": (lambda: SeqFirstAttention(), (5, 16)),
    "seq-first-mha-weights": (lambda: SeqFirstAttention(need_weights=True), (5, 16)),
    "batch-first-mha": (lambda: BatchFirstAttention(), (5, 16)),
    "encoder-layer": (lambda: Encoder(), (5, 16)),
    "seq-first-encoder-layer": (lambda: Encoder(batch_first=False), (5, 16)),
    "vit": (lambda: TinyViT(), (3, 8, 8)),
    "lstm": (lambda: Recurrent(nn.LSTM), (5, 8)),
    "lstm-2-layers-bidirectional": (lambda: Recurrent(nn.LSTM, num_layers=2, bidirectional=True), (5, 8)),
    "gru": (lambda: Recurrent(nn.GRU), (5, 8)),
    "rnn": (lambda: Recurrent(nn.RNN), (5, 8)),
    "convnext": (lambda: ConvNeXtBlock(), (3, 8, 8)),
    "swin-head": (lambda: SwinHead(), (3, 16, 16)),
    "window-attention": (lambda: WindowAttention(), (4, 4, 16)),
}

# exports whose graph computes less than the module: the dynamo exporter unrolls nn.RNN into
# per-step MatMuls and folds the first step's product with the zero initial state into a constant
NOT_THE_MODULE = {("rnn", "dynamo"): "the dynamo exporter unrolls nn.RNN and folds the first step's h0 product"}


# where the exported graph computes something else than the module run eagerly (MACs still agree)
DIFFERS_FROM_LOAD_TORCH = {
    # need_weights=True: PyTorch averages the attention weights over the heads (load_torch counts
    # it); the exported graph drops that unused output and scales q rather than the scores
    "seq-first-mha-weights",
}

EXPORTS = [(case, exporter, 2) for case in sorted(CASES) for exporter in EXPORTERS] + [
    (case, exporter, 1) for case in ("convnext", "swin-head", "vit", "window-attention")
    for exporter in EXPORTERS]


@pytest.mark.parametrize("case, exporter, export_batch", EXPORTS)
def test_exported_models_count_like_flop_counter_mode(tmp_path, profile, case, exporter, export_batch):
    """Exported at batch 2 (and 1, where the exporters squeeze or merge the batch axis), counted
    at batches 1 and 3: FlopCounterMode's MACs, forward and training, and the module's
    parameters; nothing left out."""
    if (case, exporter) in NOT_THE_MODULE:
        pytest.skip(NOT_THE_MODULE[(case, exporter)])
    build, sample = CASES[case]
    module = _seeded(build())
    path = tmp_path / f"{case}.onnx"
    _export(module, torch.randn((export_batch,) + sample), path, exporter)
    model = opcount.load_onnx(path)
    assert model.name == case
    assert model.input_shape == sample
    assert model.params == sum(p.numel() for p in module.parameters())
    torch_model = opcount.load_torch(module, torch.randn((2,) + sample))
    for phase, batch in (("inference", 1), ("inference", 3), ("training", 3)):
        result = opcount.count_model(model, profile, phase=phase, batch=batch)
        assert result.complete, result.incomplete
        assert result.macs == _flop_counter_macs(module, (batch,) + sample, phase == "training"), (phase, batch)
        if case not in DIFFERS_FROM_LOAD_TORCH:
            assert result.totals == opcount.count_model(torch_model, profile, phase=phase, batch=batch).totals


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_sequence_first_attention_hand_count(tmp_path, profile, exporter):
    """nn.MultiheadAttention on (T, N, D) inside a batch-first model: the four projections take
    all T tokens of each sample, N*4*T*D*D MACs, and the attention core N*2*T*T*D (one sdpa layer);
    counting one token per sample would give N*4*D*D."""
    t, d = 5, 16
    module = _seeded(SeqFirstAttention())
    path = tmp_path / "mha.onnx"
    _export(module, torch.randn(2, t, d), path, exporter)
    model = opcount.load_onnx(path)
    assert [layer.type for layer in model.layers].count("sdpa") == 1
    assert sorted(layer.attrs["out"] for layer in model.layers if layer.type == "linear") == [d, 3 * d]
    for n in (1, 4):
        result = opcount.count_model(model, profile, batch=n)
        assert result.macs == n * (4 * t * d * d + 2 * t * t * d)


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_lstm_hand_count(tmp_path, profile, exporter):
    """One LSTM layer (I=8, H=12) over T=5 steps and a linear head: N*(4H(I+H)T + T*H*3) MACs."""
    t, i, h = 5, 8, 12
    module = _seeded(Recurrent(nn.LSTM))
    path = tmp_path / "lstm.onnx"
    _export(module, torch.randn(2, t, i), path, exporter)
    model = opcount.load_onnx(path)
    lstm = [layer for layer in model.layers if layer.type == "lstm"]
    assert len(lstm) == 1 and lstm[0].params == 4 * h * (i + h) + 8 * h and lstm[0].in_shape == (t, i)
    for n in (1, 3):
        assert opcount.count_model(model, profile, batch=n).macs == n * (4 * h * (i + h) * t + t * h * 3)


class MaskedAttention(nn.Module):
    """Two inputs, ``forward(x, mask)``: the mask (a float key-padding mask) is added to the scores."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, x, mask):
        return self.fc(self.attn(x, x, x, key_padding_mask=mask, need_weights=False)[0])


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_second_graph_input_is_a_view_of_the_model_input(tmp_path, profile, exporter):
    """A model with two inputs: the first is the model input, the mask enters as a free view of it;
    MACs as FlopCounterMode's with both inputs."""
    from torch.utils.flop_counter import FlopCounterMode
    module = _seeded(MaskedAttention())
    path = tmp_path / "masked.onnx"
    if exporter == "dynamo":
        pytest.importorskip("onnxscript", reason="the dynamo exporter needs onnxscript")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(2, 5, 16), torch.zeros(2, 5)), str(path),
                          dynamo=exporter == "dynamo")
    model = opcount.load_onnx(path)
    assert model.input_shape == (5, 16)
    assert model.params == sum(p.numel() for p in module.parameters())
    result = opcount.count_model(model, profile, batch=3)
    assert result.complete, result.incomplete
    meta = _twin(module).to("meta")
    with FlopCounterMode(display=False) as counter:
        meta(torch.randn(3, 5, 16, device="meta"), torch.zeros(3, 5, device="meta"))
    assert result.macs == counter.get_total_flops() // 2


SPECS = {
    "batch-first-mha": {"input": [5, 16], "layers": [{"type": "attention", "heads": 4}]},
    "lstm": {"input": [5, 8], "layers": [{"type": "lstm", "hidden": 12}, {"type": "linear", "out": 3}]},
    "lstm-2-layers-bidirectional": {"input": [5, 8], "layers": [
        {"type": "lstm", "hidden": 12, "layers": 2, "bidirectional": True}, {"type": "linear", "out": 3}]},
    "gru": {"input": [5, 8], "layers": [{"type": "gru", "hidden": 12}, {"type": "linear", "out": 3}]},
}


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("case", sorted(SPECS))
def test_onnx_torch_and_yaml_spec_agree(tmp_path, profile, case, exporter):
    """The same model as an ONNX export, through load_torch and as a model spec: identical counts."""
    build, sample = CASES[case]
    module = _seeded(build())
    path = tmp_path / f"{case}.onnx"
    _export(module, torch.randn((2,) + sample), path, exporter)
    models = {"onnx": opcount.load_onnx(path), "torch": opcount.load_torch(module, torch.randn((2,) + sample)),
              "spec": opcount.load_model(dict(SPECS[case], name=case))}
    for phase in ("inference", "training"):
        totals = {name: opcount.count_model(m, profile, phase=phase, batch=2).totals for name, m in models.items()}
        assert totals["onnx"] == totals["torch"] == totals["spec"], phase
    assert models["onnx"].params == models["torch"].params == models["spec"].params


class _UpNet(nn.Module):
    """ConvTranspose, GroupNorm (the TorchScript exporter writes it as InstanceNormalization with a
    constant identity affine), a nearest upsample (Resize), LayerNorm and an expand."""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1)
        self.norm = nn.GroupNorm(2, 4)
        self.ln = nn.LayerNorm([4, 16, 16])

    def forward(self, x):
        h = nn.functional.interpolate(self.norm(self.up(x)), scale_factor=2, mode="nearest")
        return self.ln(h).unsqueeze(1).expand(-1, 2, -1, -1, -1)


class _EinsumAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        scores = torch.einsum("btd,bsd->bts", self.q(x), self.k(x)).softmax(-1)
        return torch.einsum("bts,bsd->btd", scores, x)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("case", ["upnet", "einsum"])
def test_onnx_ops_count_like_the_torch_route(tmp_path, profile, case, exporter):
    """The ops the ONNX audit added, exported from PyTorch: the up-sampling net gives load_torch's
    counts op for op (forward and training, parameters included); the einsum attention gives
    FlopCounterMode's MACs (load_torch does not count einsum)."""
    module = _seeded(_UpNet() if case == "upnet" else _EinsumAttention())
    shape = (1, 2, 4, 4) if case == "upnet" else (1, 5, 8)
    path = tmp_path / f"{case}.onnx"
    _export(module, torch.randn(shape), path, exporter)
    model = opcount.load_onnx(path)
    assert model.complete and model.params == sum(p.numel() for p in module.parameters())
    for phase in ("inference", "training"):
        got = opcount.count_model(model, profile, phase=phase, batch=3)
        if case == "upnet":
            want = opcount.count_model(opcount.load_torch(module, torch.randn(shape)), profile, phase=phase, batch=3)
            assert got.totals == want.totals and got.macs == want.macs
        else:
            assert got.macs == _flop_counter_macs(module, (3,) + shape[1:], phase == "training")


class _Recurrent(nn.Module):
    """A Python loop over the features: scripted, the TorchScript exporter writes it as an ONNX
    Loop whose trip count is a constant and whose condition is an outer-scope true."""

    def __init__(self):
        super().__init__()
        self.cell = nn.Linear(4, 4)

    def forward(self, x):
        h = x
        for _ in range(x.size(1)):
            h = torch.tanh(self.cell(h))
        return h


def test_scripted_loop_is_unrolled_and_counts_like_the_module(tmp_path, profile):
    """4 iterations of Linear(4, 4) + tanh: the Loop's body is counted once per iteration, its
    weight and bias once (tied), equal to load_torch forward and training."""
    module = _seeded(_Recurrent())
    path = tmp_path / "loop.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)          # torch.jit.script is deprecated
        scripted = torch.jit.script(module)
    _export(scripted, torch.randn(1, 4), path, "torchscript")
    model = opcount.load_onnx(path)
    assert model.complete and model.params == 20
    assert sum(layer.type == "linear" for layer in model.layers) == 4
    want_model = opcount.load_torch(module, torch.randn(1, 4))
    for phase in ("inference", "training"):
        got = opcount.count_model(model, profile, phase=phase, batch=3)
        want = opcount.count_model(want_model, profile, phase=phase, batch=3)
        # per sample: 4 x 16 forward; training adds 4 weight gradients and 3 input gradients
        # (the first step's input is the model input)
        assert got.totals == want.totals and got.macs == 3 * (64 if phase == "inference" else 64 + 64 + 48)
