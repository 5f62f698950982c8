"""load_torch on small models users write (outside the zoo): each is either counted exactly —
FlopCounterMode's MACs on meta tensors, forward and training, parameters = sum(numel), and a hand
count where FlopCounterMode sees no product — or reported as not counted (incomplete, with an
IncompleteModelWarning naming it)."""
import json

import pytest

import opcount

from .test_opcount_formulas import FAKE
from .test_opcount_torch_models import check

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.checkpoint import checkpoint  # noqa: E402

N = 2


def x(*shape):
    return torch.randn(1, *shape)


class Seq2Seq(nn.Module):
    """nn.Transformer (encoder-decoder, batch first) with a causal target mask."""

    def __init__(self):
        super().__init__()
        self.t = nn.Transformer(8, 2, 1, 1, 16, dropout=0.0, batch_first=True)

    def forward(self, src, tgt):
        mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1], device=tgt.device)
        return self.t(src, tgt, tgt_mask=mask, tgt_is_causal=True)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True)

    def forward(self, tgt, memory, pad):
        mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1], device=tgt.device)
        return self.layer(tgt, memory, tgt_mask=mask, memory_key_padding_mask=pad)


class GQA(nn.Module):
    """F.scaled_dot_product_attention with 4 query heads sharing 2 key/value heads."""

    def __init__(self, **kw):
        super().__init__()
        self.q, self.kv = nn.Linear(8, 16), nn.Linear(8, 16)
        self.kw = kw

    def forward(self, x):
        b, t, _ = x.shape
        q = self.q(x).view(b, t, 4, 4).transpose(1, 2)
        k, v = self.kv(x).view(b, t, 2, 2, 4).permute(2, 0, 3, 1, 4)
        kw = dict(self.kw)
        if kw.pop("mask", False):
            kw["attn_mask"] = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        return F.scaled_dot_product_attention(q, k, v, enable_gqa=True, **kw).transpose(1, 2).reshape(b, t, 16)


class Attention(nn.Module):
    """Single-head attention written with einsum, bmm or baddbmm."""

    def __init__(self, how):
        super().__init__()
        self.how = how
        self.qkv = nn.Linear(8, 24)
        if how == "baddbmm":
            self.bias = nn.Parameter(torch.zeros(5, 5))

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, -1)
        if self.how == "einsum":
            a = torch.einsum("btd,bsd->bts", q, k).softmax(-1)
            return torch.einsum("bts,bsd->btd", a, v)
        if self.how == "einsum-ellipsis":
            return torch.einsum("...id,...jd->...ij", q, k).softmax(-1) @ v
        if self.how == "bmm":
            return torch.bmm(torch.bmm(q, k.transpose(1, 2)).softmax(-1), v)
        scores = torch.baddbmm(self.bias.expand(x.shape[0], 5, 5), q, k.transpose(1, 2), alpha=0.5)
        return torch.bmm(scores.softmax(-1), v)


class HeadsEinsum(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        self.w = nn.Parameter(torch.randn(2, 4, 8))

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, 2, 4).unbind(2)
        a = torch.einsum("bqhd,bkhd->bhqk", q, k).softmax(-1)
        y = torch.einsum("bhqk,bkhd->bqhd", a, v)
        return torch.einsum("bqhd,hde->bqe", y, self.w)           # a bare output projection weight


class Embeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.e = nn.Embedding(10, 4)
        self.fc = nn.Linear(4, 3)

    def forward(self, i):
        return self.fc(self.e(i))


class TiedHead(nn.Module):
    """A language model whose output layer is its embedding table, transposed: h @ wte.weight.T."""

    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(11, 4)
        self.fc = nn.Linear(4, 4)

    def forward(self, i):
        return torch.relu(self.fc(self.wte(i))) @ self.wte.weight.T


class Up(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(2, 8, 1)
        self.d = nn.Conv2d(2, 2, 3)

    def forward(self, x):
        y = F.pixel_shuffle(self.c(x), 2)                                  # [2, 6, 6]
        y = F.interpolate(y, scale_factor=2, mode="nearest")               # [2, 12, 12]
        return self.d(F.pad(y, (1, 1, 1, 1), mode="reflect"))


class Elementwise(nn.Module):
    """cumsum, where, masked_fill, in-place ops, a Linear called twice."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        y = self.a(x)
        y.mul_(2.0)
        y.add_(self.b(x))
        y = torch.where(y > 0, y, 0.1 * y).masked_fill(y.abs() > 5, 0.0)
        return self.a(torch.relu_(torch.cumsum(y, -1)))


class Checkpointed(nn.Module):
    def __init__(self, reentrant):
        super().__init__()
        self.reentrant = reentrant
        self.a = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))
        self.b = nn.Linear(4, 4)

    def forward(self, x):
        return checkpoint(self.a, self.b(x), use_reentrant=self.reentrant)


EXACT = [
    ("transformer", Seq2Seq, (x(5, 8), x(3, 8)), 0),
    ("decoder-layer-masks", Decoder, (x(3, 8), x(5, 8), torch.zeros(1, 5, dtype=torch.bool)), 0),
    ("sdpa-gqa", GQA, x(6, 8), 0),
    ("sdpa-gqa-mask", lambda: GQA(mask=True), x(6, 8), 0),
    # causal: FlopCounterMode prices the 15 masked of 36 scores per head: 4 heads x 15 x (4 + 4) MACs
    ("sdpa-gqa-causal", lambda: GQA(is_causal=True), x(6, 8), 2 * N * 4 * 15 * 8),
    ("einsum", lambda: Attention("einsum"), x(5, 8), 0),
    ("einsum-ellipsis", lambda: Attention("einsum-ellipsis"), x(5, 8), 0),
    ("einsum-heads-weight", HeadsEinsum, x(5, 8), 0),
    ("bmm", lambda: Attention("bmm"), x(5, 8), 0),
    ("baddbmm", lambda: Attention("baddbmm"), x(5, 8), 0),
    ("embedding", Embeddings, torch.zeros(1, 6, dtype=torch.long), 0),
    ("tied-head-transposed", TiedHead, torch.zeros(1, 5, dtype=torch.long), 0),
    ("conv1d", lambda: nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Conv1d(4, 2, 3, stride=2)), x(2, 11), 0),
    ("conv3d", lambda: nn.Sequential(nn.Conv3d(2, 3, 2), nn.Conv3d(3, 2, 2, padding=1)), x(2, 4, 4, 3), 0),
    ("conv-transpose2d", lambda: nn.Sequential(nn.Conv2d(2, 4, 3),
                                               nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)),
     x(2, 6, 6), 0),
    ("upsample-shuffle-pad", Up, x(2, 3, 3), 0),
    ("norms", lambda: nn.Sequential(nn.Conv2d(2, 4, 1), nn.GroupNorm(2, 4), nn.InstanceNorm2d(4, affine=True),
                                    nn.InstanceNorm2d(4)), x(2, 3, 3), 0),
    ("elementwise-inplace-twice", Elementwise, x(3, 4), 0),
    ("checkpoint-reentrant", lambda: Checkpointed(True), x(4), 0),
]


@pytest.mark.parametrize("name, make, inputs, excess", EXACT, ids=[case[0] for case in EXACT])
def test_counted_exactly_as_flop_counter(name, make, inputs, excess):
    check(make, inputs, N, excess=excess)


def training(make, inputs):
    ir, result = check(make, inputs, N)
    return {layer.name: layer for layer in ir.layers}, {layer.name: layer.stages for layer in result.layers}


def test_hand_counts_where_the_flop_counter_sees_no_product():
    layers, stages = training(Elementwise, x(3, 4))
    # the second call of ``a`` (on [3, 4] rows): its weight and bias gradients add into the first's
    second = next(name for name, layer in layers.items() if layer.attrs.get("tied_to") == "a")
    assert layers[second].attrs["tied_bias"] and layers[second].params == 0
    rows = N * 3
    assert stages[second]["backward"]["add"] == rows * 4 * 3 + 16 * (rows - 1) + 16 + 4 * (rows - 1) + 4
    cumsum = next(name for name, layer in layers.items() if layer.type == "cumsum")
    assert stages[cumsum]["forward"]["add"] == stages[cumsum]["backward"]["add"] == rows * 3
    # the comparisons give no gradient: ``where``'s and masked_fill's inputs sum none for them
    where = next(name for name, layer in layers.items() if name.startswith("where"))
    assert not any(stages[where]["backward"].values())

    layers, stages = training(Up, x(2, 3, 3))
    pad = next(name for name, layer in layers.items() if layer.attrs.get("op") == "pad")
    assert stages[pad]["backward"]["add"] == N * 2 * (14 * 14 - 12 * 12)      # reflected copies add back
    shuffle = next(name for name, layer in layers.items() if layer.attrs.get("op") == "pixel_shuffle")
    assert not any(stages[shuffle]["backward"].values())


def test_transposed_embedding_table_is_a_tied_output_layer():
    layers, _ = training(TiedHead, torch.zeros(1, 5, dtype=torch.long))
    head = [layer for layer in layers.values() if layer.attrs.get("tied_to") == "wte"]
    assert len(head) == 1 and head[0].type == "linear" and head[0].attrs["out"] == 11


def test_instance_norm_counts_as_group_norm_per_channel():
    _, instance = check(lambda: nn.Sequential(nn.Conv2d(2, 4, 1), nn.InstanceNorm2d(4, affine=True)), x(2, 3, 3), N)
    _, group = check(lambda: nn.Sequential(nn.Conv2d(2, 4, 1), nn.GroupNorm(4, 4)), x(2, 3, 3), N)
    assert instance.totals == group.totals


class Bag(nn.Module):
    def __init__(self, mode="mean"):
        super().__init__()
        self.e = nn.EmbeddingBag(10, 4, mode=mode)
        self.fc = nn.Linear(4, 3)

    def forward(self, i):
        return self.fc(self.e(i))


class Ranked(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how = how
        self.fc = nn.Linear(4, 6)

    def forward(self, x):
        y = self.fc(x)
        return y.topk(2, -1).values if self.how == "topk" else torch.sort(y, -1).values


class Bilinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(2, 4, 1)

    def forward(self, x):
        return F.interpolate(self.c(x), scale_factor=2, mode="bilinear", align_corners=False)


class Attention_weights(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        y, w = self.mha(x, x, x)
        return y.sum(-1) + w.sum(-1)


def _parametrized(kind):
    from torch.nn.utils import parametrizations
    return lambda: nn.Sequential(getattr(parametrizations, kind)(nn.Linear(4, 3)))


REPORTED = [
    ("checkpoint", lambda: Checkpointed(False), x(4), "checkpoint"),
    ("embedding-bag-max", lambda: Bag("max"), torch.zeros(1, 6, dtype=torch.long), "embedding_bag"),
    ("topk", lambda: Ranked("topk"), x(3, 4), "topk"),
    ("sort", lambda: Ranked("sort"), x(3, 4), "sort"),
    ("bilinear", Bilinear, x(2, 3, 3), "interpolate"),
    ("instance-norm-running-stats", lambda: nn.Sequential(
        nn.Conv1d(2, 4, 1), nn.InstanceNorm1d(4, track_running_stats=True)).eval(), x(2, 5), "instance_norm"),
    ("weight-norm", _parametrized("weight_norm"), x(4), "ParametrizedLinear"),
    ("spectral-norm", _parametrized("spectral_norm"), x(4), "ParametrizedLinear"),
    ("attention-weights-read", Attention_weights, x(5, 8), "attention"),
]


def test_embedding_bag_is_a_lookup_and_a_mean():
    layers, stages = training(Bag, torch.zeros(1, 6, dtype=torch.long))
    lookup = next(name for name, layer in layers.items() if layer.type == "embedding")
    mean = next(name for name, layer in layers.items() if layer.type == "reduce")
    assert layers[lookup].params == 40 and layers[mean].attrs["kind"] == "mean"
    assert stages[mean]["forward"]["add"] == N * 5 * 4 and stages[mean]["forward"]["div"] == N * 4
    assert stages[lookup]["backward"]["add"] == N * 6 * 4      # each looked-up row's gradient added in


@pytest.mark.parametrize("name, make, inputs, kind", REPORTED, ids=[case[0] for case in REPORTED])
def test_reported_when_not_counted(name, make, inputs, kind):
    torch.manual_seed(0)
    with pytest.warns(opcount.IncompleteModelWarning, match="the count is incomplete"):
        ir = opcount.load_torch(make(), inputs)
    assert not ir.complete
    result = opcount.count_model(ir, FAKE, phase="training", batch=N)
    assert not result.complete and kind in {item["type"] for item in result.incomplete}, result.incomplete


def test_checkpoint_keeps_the_gradient_chain_and_counts_the_reentrant_recomputation():
    """A checkpointed region's layers count their backward as without it (the reentrant
    implementation runs the region without gradient: that is no detach). The reentrant one runs
    the whole region's forward again in its backward: counted, FlopCounterMode's MACs; the
    non-reentrant one stops early, at the last activation its backward needs: reported."""
    plain = opcount.count_model(opcount.load_torch(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.ReLU(),
                                                                 nn.Linear(4, 4)), x(4)),
                                FAKE, phase="training", batch=N)
    with pytest.warns(opcount.IncompleteModelWarning, match="non-reentrant torch.utils.checkpoint"):
        ir = opcount.load_torch(Checkpointed(False), x(4))
    assert not any(layer.attrs.get("no_grad") or layer.attrs.get("recompute") for layer in ir.layers)
    assert opcount.count_model(ir, FAKE, phase="training", batch=N).totals == plain.totals
    ir, reentrant = check(lambda: Checkpointed(True), x(4), N)
    assert [layer.name for layer in ir.layers if layer.attrs.get("recompute")] == ["a.0", "a.1", "a.2"]
    region = [layer for layer in plain.layers if layer.name in ("1", "2", "3")]
    again = {op: sum(layer.stages["forward"][op] for layer in region) for op in plain.totals["forward"]}
    assert reentrant.totals["backward"] == {op: plain.totals["backward"][op] + again[op] for op in again}


def test_weight_norm_parameters_are_reported_with_their_count():
    with pytest.warns(opcount.IncompleteModelWarning):
        ir = opcount.load_torch(_parametrized("weight_norm")(), x(4))
    # the linear layer counts 15; the module holds g (3) and v (12) and a bias (3)
    assert ir.params + sum(item["params"] for item in ir.left_out) == 18


# --- round 2: GPT-2 as nanoGPT and Hugging Face write it, norms without affine, padding modes ---

class GPT2Attention(nn.Module):
    """nanoGPT's CausalSelfAttention: fused qkv Linear, split, view/transpose, SDPA (causal) or
    Hugging Face's eager form (matmul, scale, masked_fill from a tril buffer, softmax, matmul)."""

    def __init__(self, d, heads, sdpa=True):
        super().__init__()
        self.c_attn, self.c_proj, self.heads, self.sdpa = nn.Linear(d, 3 * d), nn.Linear(d, d), heads, sdpa
        self.register_buffer("bias", torch.tril(torch.ones(16, 16)).view(1, 1, 16, 16), persistent=False)

    def forward(self, x):
        b, t, d = x.size()
        q, k, v = (y.view(b, t, self.heads, d // self.heads).transpose(1, 2) for y in self.c_attn(x).split(d, 2))
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            a = (q @ k.transpose(-2, -1)) * (1.0 / (d // self.heads) ** 0.5)
            y = a.masked_fill(self.bias[:, :, :t, :t] == 0, float("-inf")).softmax(-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, d))


class HFConv1D(nn.Module):
    """Hugging Face GPT-2's Conv1D: torch.addmm(bias, x.view(-1, nx), weight)."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf, self.weight, self.bias = nf, nn.Parameter(torch.randn(nx, nf)), nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(x.size()[:-1] + (self.nf,))


class NewGELU(nn.Module):
    """Hugging Face's gelu_new, written out (pow 3.0, tanh)."""

    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(0.7978845608 * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2(nn.Module):
    """A 2-block GPT-2: wte + wpe(arange(t)) (position ids without a batch axis), pre-norm blocks,
    lm_head tied to wte; ``hf``: Conv1D MLP with gelu_new and eager attention."""

    def __init__(self, hf=False, d=8, heads=2, vocab=13):
        super().__init__()
        self.hf = hf
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(16, d)
        self.attn = nn.ModuleList(GPT2Attention(d, heads, sdpa=not hf) for _ in range(2))
        self.ln = nn.ModuleList(nn.LayerNorm(d) for _ in range(5))
        mlp = (lambda: nn.Sequential(HFConv1D(4 * d, d), NewGELU(), HFConv1D(d, 4 * d))) if hf else (
            lambda: nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"), nn.Linear(4 * d, d)))
        self.mlp = nn.ModuleList(mlp() for _ in range(2))
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx):
        h = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for i in range(2):
            h = h + self.attn[i](self.ln[2 * i](h))
            h = h + self.mlp[i](self.ln[2 * i + 1](h))
        return self.lm_head(self.ln[4](h))


class PlainNorms(nn.Module):
    """LayerNorm without affine (DiT), F.layer_norm without weight, bias-free LayerNorm and a 0-d
    learned scale (CLIP's logit_scale)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.ln, self.ln_nobias = nn.LayerNorm([3, 4], elementwise_affine=False), nn.LayerNorm(4, bias=False)
        self.scale = nn.Parameter(torch.ones([]))

    def forward(self, x):
        y = self.ln_nobias(self.ln(self.fc(x)))
        return F.layer_norm(y, (4,)) * self.scale.exp()


ROUND2 = [
    # causal SDPA: FlopCounterMode prices the 10 masked of 25 scores per head dense: 2 blocks x
    # 2 heads x 10 x (4 + 4) MACs per sample
    ("nanogpt-tied-wpe-sdpa-causal", GPT2, torch.zeros(1, 5, dtype=torch.long), 2 * N * 2 * 2 * 10 * 8),
    ("hf-gpt2-conv1d-gelu-new-eager", lambda: GPT2(hf=True), torch.zeros(1, 5, dtype=torch.long), 0),
    ("norms-without-affine-0d-parameter", PlainNorms, x(3, 4), 0),
    ("conv-padding-mode-reflect-circular", lambda: nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="reflect"), nn.Conv2d(3, 2, 3, padding="same",
                                                                            padding_mode="circular")),
     x(2, 5, 6), 0),
    ("conv1d-padding-mode-replicate", lambda: nn.Sequential(nn.Conv1d(2, 3, 1), nn.Conv1d(3, 2, 4, padding=2,
                                                                                        padding_mode="replicate")),
     x(2, 7), 0),
]


@pytest.mark.parametrize("name, make, inputs, excess", ROUND2, ids=[case[0] for case in ROUND2])
def test_real_models_counted_as_flop_counter(name, make, inputs, excess):
    check(make, inputs, N, excess=excess)


def test_position_embedding_of_constant_ids_is_gathered_once_and_its_gradient_summed():
    """wpe(arange(t)): the table is a parameter layer (16 x 8, updated), the lookup free forward;
    backward the add sums the rows' gradients over the batch ((N-1) t d adds) and the gather adds
    them into the table (t d adds), as torch's embedding backward does."""
    ir, result = check(GPT2, torch.zeros(1, 5, dtype=torch.long), N, excess=ROUND2[0][3])
    layers, stages = {layer.name: layer for layer in ir.layers}, {layer.name: layer.stages for layer in result.layers}
    assert layers["wpe.weight"].type == "parameter" and layers["wpe.weight"].params == 16 * 8
    assert layers["wpe"].attrs["grad"] == "gather" and layers["wpe"].attrs["once"]
    assert stages["wpe"]["backward"]["add"] == 5 * 8
    add = next(name for name, layer in layers.items() if layer.inputs == ("wte", "wpe"))
    # its output's two readers' gradients summed (N t d), the broadcast wpe rows summed over the batch
    assert stages[add]["backward"]["add"] == N * 5 * 8 + (N - 1) * 5 * 8
    assert stages["wpe.weight"]["update"] == stages["wte"]["update"] | {"sub": 16 * 8, "mul": 16 * 8}


def test_addmm_with_a_bare_weight_is_a_linear_layer_and_pow_three_is_two_products():
    layers, stages = training(lambda: GPT2(hf=True), torch.zeros(1, 5, dtype=torch.long))
    fc = layers["mlp.0.0.addmm"]
    assert fc.type == "linear" and fc.params == 8 * 32 + 32 and fc.attrs["bias"]
    same = opcount.count_model(opcount.load_torch(nn.Linear(8, 32), x(5, 8)), FAKE, phase="training", batch=N)
    assert stages["mlp.0.0.addmm"]["forward"] == same.layers[0].stages["forward"]
    # x ** 3 is x * x * x (2 mul), its gradient 3 x^2 dy (3 mul): no exp or log
    pow3 = next(name for name in layers if name.startswith("mlp.0.1.pow"))
    assert {op: n for op, n in stages[pow3]["forward"].items() if n} == {"mul": 2 * N * 5 * 32}
    assert {op: n for op, n in stages[pow3]["backward"].items() if n} == {"mul": 3 * N * 5 * 32}


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv_padding_mode_counts_as_the_pad_and_an_unpadded_conv(mode):
    pad = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "circular": nn.CircularPad2d}[mode]
    modes = opcount.load_torch(nn.Sequential(nn.Conv2d(2, 2, 1), nn.Conv2d(2, 3, 3, padding=(1, 2),
                                                                            padding_mode=mode)), x(2, 5, 6))
    explicit = opcount.load_torch(nn.Sequential(nn.Conv2d(2, 2, 1), pad((2, 2, 1, 1)), nn.Conv2d(2, 3, 3)),
                                  x(2, 5, 6))
    a, b = (opcount.count_model(ir, FAKE, phase="training", batch=N) for ir in (modes, explicit))
    assert a.complete and a.totals == b.totals and a.macs == b.macs
    # the padded copies' gradients add back into the input's: out - in adds per sample
    assert next(layer for layer in a.layers if layer.name == "1.pad").stages["backward"]["add"] == \
        N * 2 * (7 * 10 - 5 * 6)


def test_reported_reason_is_the_readers_own(tmp_path, capsys):
    """What load_torch leaves uncounted says why (not 'unknown layer type'), in Python and in
    `tosim count FILE.py:NAME` (text and --json)."""
    from tosim.cli import main

    class Bcast(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(2, 8, 3))

        def forward(self, x):
            return (x.unsqueeze(1) @ self.w).flatten(1)
    with pytest.warns(opcount.IncompleteModelWarning, match="a product with a constant or batch-free operand"):
        ir = opcount.load_torch(Bcast(), x(5, 8))
    result = opcount.count_model(ir, FAKE, batch=N)
    assert [item["reason"] for item in result.incomplete] == ["a product with a constant or batch-free operand"]
    path = tmp_path / "net.py"
    path.write_text("import torch\nfrom torch import nn\n\n"
                    "class Bcast(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                    "        self.w = nn.Parameter(torch.randn(2, 8, 3))\n\n"
                    "    def forward(self, x):\n        return (x.unsqueeze(1) @ self.w).flatten(1)\n\n"
                    "def build():\n    return Bcast(), torch.randn(1, 5, 8)\n")
    assert main(["count", f"{path}:build", "--batch", "3"]) == 0
    out = capsys.readouterr().out
    assert "INCOMPLETE: 1 layer(s)" in out and ": a product with a constant or batch-free operand" in out
    assert main(["count", f"{path}:build", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["complete"] is False and data["incomplete"][0]["reason"].startswith("a product with a constant")
    assert main(["count", f"{path}:nope"]) == 2
    assert "tosim: error:" in capsys.readouterr().err


class Statistics(nn.Module):
    """var, std, F.normalize and the 2-norm, written as their steps (two-pass variance)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)                                                   # [3, 4] per sample
        y = y + y.var(-1, keepdim=True) + y.std(1, True, True)           # over 4 (n - 1), over 3
        with torch.no_grad():
            scale = torch.linalg.vector_norm(y, dim=-1).unsqueeze(-1)     # no gradient
        return F.normalize(y, dim=-1) * scale


def test_var_std_normalize_and_norm_are_counted_as_their_steps():
    layers, stages = training(Statistics, x(3, 4))

    def ops(prefix, stage="forward"):
        total = {}
        for name, layer in layers.items():
            if name == prefix or name.startswith(prefix + "_"):
                for op, n in stages[name][stage].items():
                    total[op] = total.get(op, 0) + n
        return {op: n for op, n in total.items() if n}
    rows, n = N * 3, 4          # the var: per row of 4, mean (3 add, 1 div), 4 sub, 4 mul, 3 add, 1 div by 3
    assert ops("var") == {"add": rows * 6, "div": rows * 2, "sub": rows * n, "mul": rows * n}
    # its backward is 2 (x - mean) dy / (n - 1): the square's 2 mul and the division, none through the mean
    assert ops("var", "backward") == {"mul": 2 * rows * n, "div": rows}
    cols = N * 4                # the std over 3 rows (n - 1 = 2), then a sqrt
    assert ops("std") == {"add": cols * 4, "div": cols * 2, "sub": cols * 3, "mul": cols * 3, "sqrt": cols}
    assert ops("vector_norm") == {"mul": rows * n, "add": rows * 3, "sqrt": rows}
    assert ops("vector_norm", "backward") == {}                          # under torch.no_grad
    # normalize: the norm (4 mul, 3 add, 1 sqrt), clamped to eps (1 cmp), x / norm (4 div) per row
    assert ops("normalize") == {"mul": rows * n, "add": rows * 3, "sqrt": rows, "cmp": rows, "div": rows * n}


def test_packed_sequence_is_an_error_that_says_why():
    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(4, 5, batch_first=True)

        def forward(self, x, lengths):
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            return nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], batch_first=True)[0]
    with pytest.raises(opcount.ModelError, match="cannot read tensor values, such as the lengths of a packed"):
        opcount.load_torch(Packed(), (x(3, 4), torch.tensor([3])))


class TutorialNet(nn.Module):
    """The PyTorch 60-minute blitz CNN: functional pools and activations."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 3, 5), nn.Conv2d(3, 4, 3)
        self.fc1, self.fc2 = nn.Linear(4 * 2 * 2, 6), nn.Linear(6, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.avg_pool2d(F.relu(self.conv2(x)), 2, ceil_mode=True)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


POOLS = [
    (lambda y: F.max_pool2d(y, (3, 2), stride=(2, 1), padding=1, ceil_mode=True),
     nn.MaxPool2d((3, 2), (2, 1), 1, ceil_mode=True)),
    (lambda y: F.max_pool2d(y, 3, 2, 1, 2, return_indices=True)[0], nn.MaxPool2d(3, 2, 1, 2)),
    (lambda y: F.avg_pool2d(y, 3, 2, 1), nn.AvgPool2d(3, 2, 1)),
    (lambda y: F.adaptive_avg_pool2d(y, (2, 3)), nn.AdaptiveAvgPool2d((2, 3))),
    (lambda y: F.adaptive_max_pool2d(y, 2), nn.AdaptiveMaxPool2d(2)),
    (lambda y: F.avg_pool1d(y.flatten(2), 3, 2, 1), nn.Sequential(nn.Flatten(2), nn.AvgPool1d(3, 2, 1))),
]


class _Then(nn.Module):
    def __init__(self, after):
        super().__init__()
        self.conv, self.after = nn.Conv2d(2, 3, 1), after

    def forward(self, x):
        return self.after(self.conv(x))


@pytest.mark.parametrize("k", range(len(POOLS)))
def test_functional_pools_count_as_their_modules(k):
    function, module = POOLS[k]
    a = opcount.count_model(opcount.load_torch(_Then(function), x(2, 7, 9)), FAKE, phase="training", batch=N)
    b = opcount.count_model(opcount.load_torch(_Then(module), x(2, 7, 9)), FAKE, phase="training", batch=N)
    assert a.complete and a.totals == b.totals and a.totals["forward"] != a.layers[0].stages["forward"]


def test_tutorial_cnn_with_functional_pools_is_counted():
    check(TutorialNet, x(1, 14, 14), N)


class Outer(nn.Module):
    """einsum products that contract nothing: an elementwise and an outer product."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)                                                    # [3, 4]
        return torch.einsum("btd,btd->btd", y, y.sigmoid()).sum(-1, keepdim=True) \
            + torch.einsum("bti,btj->btij", y, x).flatten(2)


def test_einsum_without_contraction_is_a_product_per_element_not_a_matrix_product():
    layers, stages = training(Outer, x(3, 4))           # check(): FlopCounterMode sees no matrix product
    products = [name for name, layer in layers.items() if layer.attrs.get("op") == "einsum product"]
    assert len(products) == 2 and not any(layer.type == "matmul" for layer in layers.values())
    same, outer = (stages[name] for name in products)
    assert {op: n for op, n in same["forward"].items() if n} == {"mul": N * 3 * 4}
    assert {op: n for op, n in same["backward"].items() if n} == {"mul": 2 * N * 3 * 4}
    # the outer product: 16 mul per row; backward only y needs a gradient: dy * x, summed over j
    assert {op: n for op, n in outer["forward"].items() if n} == {"mul": N * 3 * 16}
    assert {op: n for op, n in outer["backward"].items() if n} == {"mul": N * 3 * 16, "add": N * 3 * 12}


def test_half_precision_module_is_counted_in_its_format():
    """A module run in bf16 or fp16 is counted in that format (layer by layer, from its results'
    dtypes; a comparison in its operands'), not silently in the default format; float32 results
    name no format, so the profile's default_format stands in as for other sources."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            y = self.fc(x)
            return y.float().softmax(-1) * (y > 0)
    for dtype, fmt in ((torch.bfloat16, "bf16"), (torch.float16, "fp16")):
        ir = opcount.load_torch(Net().to(dtype), torch.randn(1, 4, dtype=dtype))
        formats = {layer.name: (layer.format, layer.format_given) for layer in ir.layers}
        assert formats["fc"] == formats["gt"] == (fmt, True)
        assert formats["softmax"] == ("fp32", False)
        counted = opcount.count_model(opcount.with_default_format(ir, "fp32"), FAKE, batch=N)
        assert counted.complete and {row.name: row.format for row in counted.layers}["fc"] == fmt
    assert all(not layer.format_given for layer in opcount.load_torch(Net(), x(4)).layers)


class Activations(nn.Module):
    """GLU (conformer), Mish (YOLOv4), ELU, Softplus and Softsign, written out by torch as
    functionals: counted as their steps."""

    def __init__(self):
        super().__init__()
        self.fc, self.out = nn.Linear(4, 8), nn.Linear(4, 2)
        self.acts = nn.Sequential(nn.GLU(-1), nn.Mish(), nn.ELU(), nn.Softplus(), nn.Softsign())

    def forward(self, x):
        return self.out(self.acts(self.fc(x)))


def test_glu_mish_elu_softplus_softsign_are_counted_as_their_steps():
    layers, stages = training(Activations, x(3, 4))
    rows = N * 3 * 4                           # elements after the GLU halves the 8 features

    def ops(prefix, stage="forward"):
        total = {}
        for name in layers:
            if name == prefix or name.startswith(prefix + "_"):
                for op, n in stages[name][stage].items():
                    total[op] = total.get(op, 0) + n
        return {op: n for op, n in total.items() if n}
    # FAKE's recipes: sigmoid (1 add, 1 div), exp (3 mul), log (5 div), tanh (1 sqrt)
    assert ops("acts.0.glu") == {"add": rows, "div": rows, "mul": rows}               # sigmoid(b) * a
    assert ops("acts.1.mish") == {"mul": 3 * rows + rows, "add": rows, "div": 5 * rows, "sqrt": rows}
    assert ops("acts.2.elu") == {"cmp": rows, "mul": 3 * rows + rows, "sub": rows}
    assert ops("acts.3.softplus") == {"cmp": rows, "mul": 3 * rows, "add": rows, "div": 5 * rows}
    assert ops("acts.4.softsign") == {"cmp": rows, "add": rows, "div": rows}
    # softsign's backward: dy / d for x, and -dy x / d^2 for d = 1 + |x| (1 mul, 1 div, 1 sub), |x|'s sign
    assert ops("acts.4.softsign", "backward") == {"div": 2 * rows, "mul": rows, "sub": rows, "cmp": rows}


class Cell(nn.Module):
    """nn.LSTMCell / GRUCell / RNNCell, from a computed state or zeros, for ``steps`` steps."""

    def __init__(self, kind, steps=1, given=False):
        super().__init__()
        self.kind, self.steps = kind, steps
        self.cell = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}[kind](4, 5)
        self.h0 = nn.Linear(4, 5) if given else None
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        state = None
        if self.h0 is not None:
            h = torch.tanh(self.h0(x[:, 0]))
            state = (h, h * 0.5) if self.kind == "lstm" else h
        for t in range(self.steps):
            state = self.cell(x[:, t], state)
        return self.fc(state[0] if self.kind == "lstm" else state)


class OneStep(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind](4, 5, batch_first=True)
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc(self.rnn(x[:, :1])[0][:, 0])


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_rnn_cells_are_one_step_of_their_layer(kind):
    _, cell = check(lambda: Cell(kind), x(3, 4), N)
    _, layer = check(lambda: OneStep(kind), x(3, 4), N)
    assert cell.totals == layer.totals
    check(lambda: Cell(kind, given=True), x(3, 4), N)        # a computed initial state gets its gradient
    with pytest.warns(opcount.IncompleteModelWarning, match="the adds summing them into the first step's"):
        ir = opcount.load_torch(Cell(kind, steps=3), x(3, 4))
    assert ir.params == sum(p.numel() for p in Cell(kind).parameters())
    assert [item["type"] for item in ir.left_out] == [f"{kind}_cell" if kind != "rnn" else "rnn_tanh_cell"] * 2


@pytest.mark.parametrize("take", [lambda y: y[: y.shape[0] // 2], lambda y: y[::2], lambda y: y.chunk(2, 0)[0]])
def test_a_slice_of_the_batch_axis_is_an_error_not_a_count_once(take):
    """y[:B // 2] has no batch axis to count per sample; counted once it gave millions of ops."""
    class Half(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return take(self.fc(x)).sum(-1)
    with pytest.raises(opcount.ModelError, match="takes part of the batch axis"):
        opcount.load_torch(Half(), x(3, 4))
