"""load_torch on small models users write (outside the zoo): each is either counted exactly —
FlopCounterMode's MACs on meta tensors, forward and training, parameters = sum(numel), and a hand
count where FlopCounterMode sees no product — or reported as not counted (incomplete, with an
IncompleteModelWarning naming it)."""
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
