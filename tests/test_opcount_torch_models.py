"""opcount.load_torch on twins of real architectures (torchvision cannot be imported here): every
model is complete, its parameters equal ``sum(p.numel())``, and its MACs equal
``FlopCounterMode`` on meta tensors, forward and training (FlopCounterMode prices a grouped
convolution's weight gradient as if ungrouped; that known error is subtracted)."""
import math
import warnings

import pytest

import opcount

from .test_opcount_formulas import FAKE, FakeProfile

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


def meta_flops(make, inputs):
    """FlopCounterMode FLOPs (forward, backward) of a fresh ``make()`` on meta inputs."""
    with torch.device("meta"):
        module = make()
        args = tuple(torch.empty(t.shape, dtype=t.dtype) for t in inputs) if isinstance(inputs, tuple) else None
        kwargs = {k: torch.empty(v.shape, dtype=v.dtype) for k, v in inputs.items()} if isinstance(inputs, dict) else {}
    with FlopCounterMode(display=False) as forward:
        y = module(*(args or ()), **kwargs)
        y = y[0] if isinstance(y, tuple) else y
    with FlopCounterMode(display=False) as backward:
        y.sum().backward()
    grouped = sum(m.groups - 1 for m in module.modules() if isinstance(m, nn.Conv2d))
    return module, forward.get_total_flops(), backward.get_total_flops(), grouped


def grouped_weight_error(module, batch_inputs):
    """FlopCounterMode's extra FLOPs on grouped convolutions' weight gradients: (groups-1) x the
    forward FLOPs of each grouped convolution."""
    extra = 0

    def hook(m, a, out):
        nonlocal extra
        k = m.in_channels // m.groups * math.prod(m.kernel_size)
        extra += (m.groups - 1) * 2 * out.numel() * k
    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, nn.Conv2d) and m.groups > 1]
    module(*(torch.empty(t.shape, dtype=t.dtype, device="meta") for t in batch_inputs))
    for h in handles:
        h.remove()
    return extra


class ExtraRecipes(FakeProfile):
    RECIPES = dict(FakeProfile.RECIPES, hardswish=({"mul": 13}, {"add": 13}), hardsigmoid=({"div": 17}, {"sub": 17}),
                   neg=({}, {}))


EXTRA = ExtraRecipes()


def check(make, inputs, batch, profile=FAKE, excess=0, **load):
    """Load, check completeness and params, and compare MACs with FlopCounterMode."""
    torch.manual_seed(0)
    model = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ir = opcount.load_torch(model, inputs, **load)
    assert ir.complete, ir.left_out + [layer.name for layer in ir.layers if not layer.known]
    assert ir.params == sum(p.numel() for p in model.parameters())
    batch_dim = load.get("batch_dim", 0)

    def at_batch(t):
        shape = list(t.shape)
        shape[batch_dim] = batch
        return torch.empty(shape, dtype=t.dtype)
    batched = tuple(at_batch(t) for t in inputs) if isinstance(inputs, tuple) else (
        {k: at_batch(v) for k, v in inputs.items()} if isinstance(inputs, dict) else (at_batch(inputs),))
    module, fwd, bwd, grouped = meta_flops(make, batched)
    if grouped:
        bwd -= grouped_weight_error(module, batched)
    inference = opcount.count_model(ir, profile, phase="inference", batch=batch)
    training = opcount.count_model(ir, profile, phase="training", batch=batch)
    assert inference.complete and training.complete
    # ``excess``: forward FLOPs FlopCounterMode prices that tosim does not (the masked half of a
    # causal attention, which it prices dense; its backward has twice as many)
    assert inference.flops == fwd - excess
    assert training.flops == fwd + bwd - 3 * excess
    return ir, training


# --- twins ----------------------------------------------------------------------------------------

class ViTBlock(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(d, heads, dropout=0.0, batch_first=True)
        self.dropout = nn.Dropout(0.0)
        self.ln_2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Dropout(0.0), nn.Linear(4 * d, d), nn.Dropout(0.0))

    def forward(self, x):
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = self.dropout(y) + x
        return x + self.mlp(self.ln_2(x))


class ViT(nn.Module):
    """torchvision's VisionTransformer, small: patch conv, class token, position table."""

    def __init__(self, image=16, patch=4, d=16, heads=2, layers=2, classes=5):
        super().__init__()
        self.patch, self.d = patch, d
        self.conv_proj = nn.Conv2d(3, d, patch, stride=patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, d))
        n = (image // patch) ** 2 + 1
        self.pos_embedding = nn.Parameter(torch.empty(1, n, d).normal_(std=0.02))
        self.layers = nn.Sequential(*[ViTBlock(d, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d, eps=1e-6)
        self.heads = nn.Sequential(nn.Linear(d, classes))

    def forward(self, x):
        n = x.shape[0]
        x = self.conv_proj(x).reshape(n, self.d, -1).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        x = self.ln(self.layers(x + self.pos_embedding))
        return self.heads(x[:, 0])


def test_vit_twin():
    ir, _ = check(ViT, torch.randn(1, 3, 16, 16), 3)
    types = [layer.type for layer in ir.layers]
    assert types.count("attention") == 2 and types.count("parameter") == 2


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth's interface (p, mode)."""

    def __init__(self, p, mode):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        noise = torch.empty([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device)
        return x * noise.bernoulli_(1 - self.p).div_(1 - self.p)


class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return torch.permute(x, self.dims)


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    def __init__(self, dim, layer_scale=1e-6, p=0.1):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim), Permute([0, 2, 3, 1]), nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), Permute([0, 3, 1, 2]))
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(p, "row")

    def forward(self, x):
        result = self.layer_scale * self.block(x)
        result = self.stochastic_depth(result)
        result += x
        return result


class ConvNeXt(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), LayerNorm2d(8, eps=1e-6))
        self.stage = nn.Sequential(CNBlock(8), CNBlock(8))
        self.down = nn.Sequential(LayerNorm2d(8, eps=1e-6), nn.Conv2d(8, 16, 2, stride=2))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), LayerNorm2d(16), nn.Flatten(1), nn.Linear(16, 4))

    def forward(self, x):
        return self.head(self.down(self.stage(self.stem(x))))


@pytest.mark.parametrize("train", [False, True])
def test_convnext_twin_with_layer_scale_and_stochastic_depth(train):
    def make():
        m = ConvNeXt()
        return m.train(train)
    ir, training = check(make, torch.randn(1, 3, 16, 16), 2)
    types = [layer.type for layer in ir.layers]
    assert types.count("stochastic_depth") == 2 and types.count("parameter") == 2
    # stochastic depth in training: per sample 1 cmp + 1 div, 1 mul per element
    sd = [layer for layer in training.layers if layer.type == "stochastic_depth"][0]
    assert sd.stages["forward"] == {"add": 0, "sub": 0, "mul": 2 * 8 * 4 * 4, "div": 2, "sqrt": 0, "cmp": 2}
    inference = opcount.count_model(ir, FAKE, phase="inference", batch=2)
    assert [layer for layer in inference.layers if layer.type == "stochastic_depth"][0].stages["forward"]["mul"] == 0


class GPTBlock(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"), nn.Linear(4 * d, d))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).contiguous().view(b, t, d))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab=13, t=6, d=8, heads=2, layers=2):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Parameter(torch.zeros(1, t, d))
        self.h = nn.ModuleList([GPTBlock(d, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def test_gpt_twin_fused_qkv_split_keeps_gradient_chain():
    # causal attention counts the 21 kept entries of each 6 x 6 score matrix; FlopCounterMode
    # the full 36: 15 x (head_dim + head_dim) MACs per head, sample and layer more
    ir, training = check(GPT, torch.zeros(1, 6, dtype=torch.long), 3, excess=2 * 15 * 8 * 2 * 3 * 2)
    att = [layer for layer in training.layers if layer.type == "sdpa"]
    assert len(att) == 2 and all(layer.macs["backward"] > 0 for layer in att)
    # the three slices of c_attn's output read disjoint parts: no gradient sum at c_attn
    c_attn = next(layer for layer in training.layers if layer.name == "h.0.c_attn")
    assert c_attn.stages["backward"]["add"] == c_attn.stages["backward"]["add"]
    split = [layer for layer in ir.layers if layer.attrs.get("op") == "split"]
    assert len(split) == 6 and all(layer.attrs["reads"] == 6 * 8 for layer in split)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention_batch_axis(batch_first, need_weights):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.mha = nn.MultiheadAttention(8, 2, batch_first=batch_first)

        def forward(self, x):
            h = self.fc(x)
            return self.mha(h, h, h, need_weights=need_weights)[0]
    shape = (1, 5, 8) if batch_first else (5, 1, 8)
    ir, _ = check(Net, torch.randn(*shape), 3, batch_dim=0 if batch_first else 1)
    att = ir.layer("mha")
    assert att.in_shape == (5, 8) and att.attrs["weights"] == ("mean" if need_weights else "none")


def test_transpose_linear_transpose_counts_every_token():
    class SeqFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 40)

        def forward(self, x):
            return self.fc(x.transpose(0, 1)).transpose(0, 1)
    ir, _ = check(SeqFirst, torch.randn(4, 32, 16), 4)
    result = opcount.count_model(ir, FAKE, batch=4)
    assert result.macs == 4 * 32 * 16 * 40


def test_transformer_encoder_layer_sequence_first():
    def make():
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16), 2,
                                     enable_nested_tensor=False)
    ir, training = check(make, torch.randn(5, 1, 8), 2, batch_dim=1)
    assert [layer.type for layer in ir.layers].count("attention") == 2
    # dropout 0.1 on the attention probabilities in training: 1 cmp per score
    att = [layer for layer in training.layers if layer.type == "attention"][0]
    assert att.stages["forward"]["cmp"] >= 2 * 2 * 5 * 5


class LSTMLM(nn.Module):
    def __init__(self, vocab=17, d=6, h=8):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.rnn = nn.LSTM(d, h, num_layers=2, batch_first=True, dropout=0.2)
        self.out = nn.Linear(h, vocab)

    def forward(self, idx):
        y, (h_n, c_n) = self.rnn(self.emb(idx))
        return self.out(y)


class GRUClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 5, bidirectional=True)            # sequence first
        self.proj = nn.LSTM(10, 6, proj_size=3)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        y, h_n = self.rnn(x)
        z, _ = self.proj(y)
        return self.fc(z[-1])


def test_lstm_language_model_and_yaml_agree():
    ir, training = check(LSTMLM, torch.zeros(1, 7, dtype=torch.long), 3)
    spec = opcount.load_model({"name": "lm", "input": [7], "layers": [
        {"type": "embedding", "vocab": 17, "dim": 6},
        {"type": "lstm", "hidden": 8, "layers": 2, "dropout": 0.2},
        {"type": "linear", "out": 17}]})
    for phase in ("inference", "training"):
        a = opcount.count_model(ir, FAKE, phase=phase, batch=3)
        b = opcount.count_model(spec, FAKE, phase=phase, batch=3)
        assert a.totals == b.totals and a.params == b.params


def test_gru_and_projected_lstm_sequence_first():
    ir, _ = check(GRUClassifier, torch.randn(7, 1, 4), 2, batch_dim=1)
    assert ir.layer("rnn").out_shape == (7, 10) and ir.layer("proj").out_shape == (7, 3)


class Masked(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x, mask=None):
        y, _ = self.mha(x, x, x, key_padding_mask=mask)
        return self.fc(y)


@pytest.mark.parametrize("as_dict", [False, True])
def test_two_inputs_positional_and_keyword(as_dict):
    x, mask = torch.randn(1, 5, 8), torch.zeros(1, 5, dtype=torch.bool)
    ir, _ = check(Masked, {"x": x, "mask": mask} if as_dict else (x, mask), 2)
    assert ir.layer("mha").attrs["mask"] == "additive"
    ir_no_mask = opcount.load_torch(Masked(), (x,))
    assert ir_no_mask.layer("mha").attrs["mask"] == "none"


def test_shifted_window_attention_counted_as_matmuls():
    class WindowAttention(nn.Module):
        """Swin's shifted_window_attention written with torch functions: roll, window
        partition, F.linear with the module's weights, q @ k^T, relative position bias from a
        table, the shift mask, softmax, @ v, F.linear."""

        def __init__(self, dim=8, heads=2, window=2, shift=1):
            super().__init__()
            self.heads, self.window, self.shift = heads, window, shift
            self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
            self.table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
            coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
            rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window - 1
            self.register_buffer("index", (rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]).flatten())

        def forward(self, x):
            b, h, w, c = x.shape
            ws, s = self.window, self.shift
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
            x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
            qkv = F.linear(x, self.qkv.weight, self.qkv.bias).reshape(x.size(0), ws * ws, 3, self.heads, -1)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            q = q * (c // self.heads) ** -0.5
            attn = q.matmul(k.transpose(-2, -1))
            bias = self.table[self.index].view(ws * ws, ws * ws, -1).permute(2, 0, 1).contiguous()
            attn = attn + bias.unsqueeze(0)
            mask = x.new_zeros((h, w))
            mask[h - ws:, :] = 1
            mask[:, w - s:] += 2
            mask = mask.view(h // ws, ws, w // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
            mask = (mask.unsqueeze(1) - mask.unsqueeze(2)).masked_fill(
                (mask.unsqueeze(1) - mask.unsqueeze(2)) != 0, -100.0)
            attn = attn.view(b, -1, self.heads, ws * ws, ws * ws) + mask.unsqueeze(1).unsqueeze(0)
            attn = F.softmax(attn.view(-1, self.heads, ws * ws, ws * ws), dim=-1)
            y = attn.matmul(v).transpose(1, 2).reshape(x.size(0), ws * ws, c)
            y = F.linear(y, self.proj.weight, self.proj.bias)
            y = y.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
            return torch.roll(y, shifts=(s, s), dims=(1, 2))
    ir, training = check(WindowAttention, torch.randn(1, 4, 4, 8), 2)
    assert [layer.type for layer in ir.layers].count("matmul") == 2
    # the mask is built from constants once per batch, the bias gathered from its table
    assert any(layer.attrs.get("once") and layer.type == "elementwise" for layer in ir.layers)
    assert any(layer.attrs.get("grad") == "gather" for layer in ir.layers)


def test_hardswish_hardsigmoid_mean_neg():
    class SE(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.act = nn.Hardswish()
            self.fc1, self.fc2 = nn.Conv2d(4, 2, 1), nn.Conv2d(2, 4, 1)

        def forward(self, x):
            x = self.act(self.conv(x))
            s = F.hardsigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
            return -(x * s).mean(1)
    ir, training = check(SE, torch.randn(1, 3, 6, 6), 2, profile=EXTRA)
    types = [layer.attrs.get("op", layer.type) for layer in ir.layers]
    assert "hardswish" in types and "hardsigmoid" in types and "neg" in types
    mean = [layer for layer in training.layers if layer.type == "reduce"][0]
    assert mean.stages["forward"]["add"] == 2 * 4 * (36 - 1) and mean.stages["forward"]["div"] == 2 * 4


def test_custom_module_hook_and_incomplete_warning():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(4))

        def forward(self, x):
            return x.cumprod(-1) * self.scale

    def make():
        return nn.Sequential(nn.Linear(4, 4), Odd(), nn.ReLU())
    with pytest.warns(opcount.IncompleteModelWarning, match="cumprod"):
        ir = opcount.load_torch(make(), torch.randn(2, 4))
    assert not ir.complete
    result = opcount.count_model(ir, FAKE)
    assert not result.complete and any(item["type"] == "cumprod" for item in result.incomplete)

    def odd(module, in_shapes, out_shapes):
        return [{"type": "elementwise", "op": "cumprod", "ops": {"add": 1}, "backward": {"add": 1}},
                {"type": "elementwise", "op": "scale", "ops": {"mul": 1}, "backward": {"mul": 1},
                 "params": module.scale.numel()}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ir = opcount.load_torch(make(), torch.randn(2, 4), custom_modules={Odd: odd})
    assert ir.complete and ir.params == 24
    assert [layer.type for layer in ir.layers] == ["linear", "elementwise", "elementwise", "relu"]


def test_unattributed_parameter_is_reported():
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.spare = nn.Parameter(torch.zeros(7))

        def forward(self, x):
            return self.fc(x)
    with pytest.warns(opcount.IncompleteModelWarning, match="spare"):
        ir = opcount.load_torch(Unused(), torch.randn(1, 3))
    assert ir.left_out[0]["layer"] == "spare" and ir.left_out[0]["params"] == 7
    assert ir.params == 12


def test_by_module_rollup():
    ir = opcount.load_torch(ViT(), torch.randn(1, 3, 16, 16))
    result = opcount.count_model(ir, FAKE, phase="training", batch=2)
    top = result.by_module(1)
    assert set(top) >= {"conv_proj", "layers", "ln", "heads", "class_token", "pos_embedding", "loss"}
    assert sum(row["macs"] for row in top.values()) == result.macs
    assert sum(row["params"] for row in top.values()) == result.params
    two = result.by_module(2)
    assert two["layers.0"]["macs"] + two["layers.1"]["macs"] == top["layers"]["macs"]


def test_batch_mixed_with_itself_is_an_error():
    class Gram(nn.Module):
        def forward(self, x):
            return x @ x.t()            # [batch, batch]: no per-sample shape
    with pytest.raises(opcount.ModelError, match=r"^Gram: matmul: cannot find the batch axis of a tensor"):
        opcount.load_torch(Gram(), torch.randn(2, 3))


def test_zoo_lstm_lm_equals_its_torch_twin():
    """zoo:lstm-lm against pytorch/examples' RNNModel at the same sizes, built on meta."""
    class RNNModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.5)
            self.encoder = nn.Embedding(10000, 650)
            self.rnn = nn.LSTM(650, 650, 2, dropout=0.5)
            self.decoder = nn.Linear(650, 10000)

        def forward(self, x):              # sequence first, as the example feeds it
            output, hidden = self.rnn(self.drop(self.encoder(x)))
            return self.decoder(self.drop(output))
    with torch.device("meta"):
        model = RNNModel()
    ir = opcount.load_torch(model, torch.zeros(35, 1, dtype=torch.long), batch_dim=1, loss="cross_entropy")
    zoo = opcount.load_model("zoo:lstm-lm")
    assert ir.params == zoo.params == sum(p.numel() for p in model.parameters()) == 19_780_400
    for phase in ("inference", "training"):
        a = opcount.count_model(ir, FAKE, phase=phase, batch=20)
        b = opcount.count_model(zoo, FAKE, phase=phase, batch=20)
        assert a.totals == b.totals and a.macs == b.macs and a.complete and b.complete


def vit_spec(image=16, patch=4, d=16, heads=2, layers=2, classes=5):
    """The ViT twin as a model spec: cls_token and positional_embedding layers where the torch
    model has bare parameters."""
    t = (image // patch) ** 2
    ls = [{"type": "conv2d", "out": d, "kernel": patch, "stride": patch}, {"type": "reshape", "shape": [d, t]},
          {"type": "transpose", "perm": [1, 0]}, {"type": "cls_token"}, {"type": "positional_embedding", "name": "x0"}]
    x = "x0"
    for i in range(layers):
        ls += [{"type": "layernorm", "eps": 1e-6, "inputs": x}, {"type": "attention", "heads": heads},
               {"type": "dropout", "p": 0.0, "name": f"a{i}"}, {"type": "add", "inputs": [f"a{i}", x], "name": f"r{i}"},
               {"type": "layernorm", "eps": 1e-6}, {"type": "linear", "out": 4 * d}, {"type": "gelu"},
               {"type": "dropout", "p": 0.0}, {"type": "linear", "out": d}, {"type": "dropout", "p": 0.0, "name": f"m{i}"},
               {"type": "add", "inputs": [f"m{i}", f"r{i}"], "name": f"x{i + 1}"}]
        x = f"x{i + 1}"
    ls += [{"type": "layernorm", "eps": 1e-6}, {"type": "select", "index": 0}, {"type": "linear", "out": classes}]
    return {"name": "vit", "input": [3, image, image], "layers": ls}


@pytest.mark.parametrize("phase", ["inference", "training"])
def test_vit_twin_equals_its_yaml_spec(phase):
    torch.manual_seed(0)
    ir = opcount.load_torch(ViT(), torch.randn(1, 3, 16, 16))
    spec = opcount.load_model(vit_spec())
    a = opcount.count_model(ir, FAKE, phase=phase, batch=3)
    b = opcount.count_model(spec, FAKE, phase=phase, batch=3)
    assert a.params == b.params and a.macs == b.macs
    assert a.totals == b.totals


def test_standard_module_alone_tied_weights_and_repeated_inputs():
    ir = opcount.load_torch(nn.LSTM(4, 3, batch_first=True), torch.randn(2, 5, 4))
    assert [(layer.name, layer.type) for layer in ir.layers] == [("LSTM", "lstm")] and ir.complete
    x = torch.randn(5, 2, 8)
    mha = nn.MultiheadAttention(8, 2)
    ir = opcount.load_torch(mha, (x, x, x), batch_dim=1)      # one tensor given three times: self-attention
    assert [layer.type for layer in ir.layers] == ["attention"] and ir.layers[0].inputs == ("input",)

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(10, 4)

        def forward(self, i):
            return F.linear(self.wte(i), self.wte.weight)
    ir = opcount.load_torch(Tied(), torch.zeros(2, 3, dtype=torch.long))
    assert ir.layers[1].attrs["tied_to"] == "wte" and ir.params == 40 and ir.complete

    class Reused(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(4, 4))

        def forward(self, x):
            return F.linear(x * self.w.sum(), self.w)
    with pytest.warns(opcount.IncompleteModelWarning, match=r"linear \(linear\): reuses the parameters of 'w'"):
        ir = opcount.load_torch(Reused(), torch.randn(2, 4))
    assert not ir.complete and ir.params == 16


def test_bad_modules_and_inputs_are_one_line_errors():
    class DataDependent(nn.Module):
        def forward(self, x):
            return x * float(x.sum().item())        # needs values: meta tensors have none
    with pytest.raises(opcount.ModelError, match=r"^DataDependent: cannot run the module on meta tensors: "):
        opcount.load_torch(DataDependent(), torch.randn(2, 3))
    with pytest.raises(opcount.ModelError, match=r"^Linear: example inputs must be a tensor, a tuple of inputs "
                                                 r"or a dict of keyword inputs, not int$"):
        opcount.load_torch(nn.Linear(2, 2), 3)
    with pytest.raises(opcount.ModelError, match=r"^Linear: input 0 of shape \[2\] has no batch axis 1$"):
        opcount.load_torch(nn.Linear(2, 2), torch.randn(2), batch_dim=1)

    class Block(nn.Module):
        def forward(self, x):
            return x
    with pytest.raises(opcount.ModelError, match=r"custom_modules handler for Block must return a layer spec"):
        opcount.load_torch(nn.Sequential(Block()), torch.randn(2, 3), custom_modules={Block: lambda m, i, o: 5})
