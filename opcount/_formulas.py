"""Per-layer basic-operation formulas: the handler table.

Every handler has one signature, ``handler(layer: Layer, ctx: Context) -> LayerCost``, and
returns exact integer counts for the whole batch of ``ctx.batch`` samples:

- ``forward``: the layer's forward pass (training-mode forward when ``ctx.training``, which
  changes batchnorm and dropout);
- ``backward``: the gradients the layer computes, each only where needed: the input gradient for
  each input in ``ctx.input_grad`` that is true, the weight and bias gradients whenever the layer
  owns parameters;
- ``macs``: multiply-accumulates of the dense products (linear, conv, matmul, attention), forward
  and backward, in the convention of ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs = 2 x MACs;
  other layers have none).

Counting rules shared by all handlers: a dot product of length K is K multiplications and K-1
additions, and adding a bias is one more addition (the paper's eq. 1-2 count); a sum of n terms
is n-1 additions; a constant computed once per layer or per group (1/D, rstd/D) is counted once
where it is computed; selecting, copying, reshaping, padding and masked-fill are free. Non-linear
functions (exp, log, sigmoid, tanh, erf, gelu, silu, rsqrt) are priced per element through the
profile's recipes (``ctx.recipe``), forward and backward, so the profile decides how an exponential
is built. Convolutions are counted as the im2col matrix product PyTorch's FLOP counter assumes:
every output takes all C_in/groups x prod(kernel) taps, including taps on zero padding; their input
gradient is the transposed product followed by a col2im scatter-add, whose additions are counted
exactly from the geometry (taps that land on padding are dropped, collisions are added).
"""
import math
from collections import Counter
from dataclasses import dataclass, field

from hardware_profiles.schema import BASIC_OPS as OPS

from ._ir import Layer

__all__ = ["Context", "LayerCost", "FORMULAS", "ZERO_COST", "linear_cost", "sdpa_cost"]


_COUNTER_NEW = Counter.__new__


def _new_counter():
    """An empty Counter. ``Counter()`` spends most of its time in ``__init__``'s generic
    ``update`` call, which has nothing to add to an empty one; the handlers make several per layer."""
    return _COUNTER_NEW(Counter)


@dataclass(frozen=True)
class Context:
    """What a handler may read besides the layer: batch size, mode, which inputs need a
    gradient, and the profile's recipes (an object with ``recipe_ops`` and ``has_recipe``).
    ``recipe_cache`` holds the checked per-element ops of the recipes already read; the engine
    shares one between the layers of a count, so each recipe is read from the profile once."""
    batch: int
    training: bool
    input_grad: tuple
    profile: object
    missing: list = field(default_factory=list, compare=False)
    recipe_cache: dict = field(default_factory=dict, compare=False, repr=False)

    def recipe(self, name, direction, times):
        """The basic ops of ``times`` evaluations of recipe ``name`` in ``direction``."""
        per_element = self.recipe_cache.get((name, direction))
        if per_element is None:
            if not self.profile.has_recipe(name):
                reason = f"profile has no recipe {name!r}"
                if reason not in self.missing:
                    self.missing.append(reason)
                return _new_counter()
            ops = self.profile.recipe_ops(name, direction=direction)
            for op in ops:
                if op not in OPS:
                    raise ValueError(f"recipe {name!r} gives unknown basic op {op!r}")
            per_element = tuple((op, n) for op, n in ops.items() if n)
            self.recipe_cache[(name, direction)] = per_element
        out = _new_counter()
        for op, n in per_element:
            out[op] = n * times
        return out


@dataclass
class LayerCost:
    """A layer's counts. ``recompute`` (with ``recompute_macs``) is the part of the forward a
    selective activation recomputation runs again in the backward pass (Korthikanti et al.
    2022: the attention core, whose activations are the large ones); ``None`` where nothing is
    recomputed selectively."""
    forward: Counter = field(default_factory=_new_counter)
    backward: Counter = field(default_factory=_new_counter)
    macs_forward: int = 0
    macs_backward: int = 0
    recompute: Counter | None = None
    recompute_macs: int = 0

    def __iadd__(self, other):
        self.forward.update(other.forward)
        self.backward.update(other.backward)
        self.macs_forward += other.macs_forward
        self.macs_backward += other.macs_backward
        return self


def _ops(**counts):
    out = _new_counter()
    for op, n in counts.items():
        if n:
            out[op] = n
    return out


def _elements(layer, ctx, shape=None):
    return ctx.batch * math.prod(layer.out_shape if shape is None else shape)


# --- dense products ---------------------------------------------------------------------------

def linear_cost(rows, i, o, *, bias, input_grad, weight_grad=True, tied=False, tied_bias=False):
    """y = x W^T + b over ``rows`` rows of ``i`` features.

    Forward: I multiplications, I-1 accumulation adds and 1 bias add per output (paper eq. 2:
    (I+1)O adds with the activation's add), so rows*O*I mul and rows*O*(I-1) (+rows*O) add.
    Backward: input gradient dX = dY W, rows*I*O mul and rows*I*(O-1) add; weight gradient
    dW = dY^T X, O*I*rows mul and O*I*(rows-1) add; bias gradient O*(rows-1) add; a tied weight
    adds its gradient into the owner's, O*I more adds (and a tied bias O more).
    """
    cost = LayerCost()
    cost.forward = _ops(mul=rows * o * i, add=rows * o * (i - 1) + (rows * o if bias else 0))
    cost.macs_forward = rows * o * i
    if input_grad:
        cost.backward.update(_ops(mul=rows * i * o, add=rows * i * (o - 1)))
        cost.macs_backward += rows * i * o
    if weight_grad:
        cost.backward.update(_ops(mul=o * i * rows, add=o * i * (rows - 1) + (o * i if tied else 0)))
        cost.macs_backward += o * i * rows
        if bias:
            cost.backward.update(_ops(add=o * (rows - 1) + (o if tied_bias else 0)))
    return cost


def _linear(layer: Layer, ctx: Context) -> LayerCost:
    """Linear layer over the last dimension; leading dimensions (tokens) are rows.
    See :func:`linear_cost` for the count."""
    a = layer.attrs
    rows = ctx.batch * math.prod(layer.in_shape[:-1])
    return linear_cost(rows, a["in"], a["out"], bias=a["bias"], input_grad=ctx.input_grad[0],
                       weight_grad=not a.get("frozen"), tied=a["tied_to"] is not None,
                       tied_bias=a.get("tied_bias", False))


def _conv(layer: Layer, ctx: Context) -> LayerCost:
    """Convolution (1-3 d, stride, padding, dilation, groups, depthwise) as im2col products.

    With K = C_in/groups x prod(kernel) and M output positions over the batch:
    forward M*C_out*K mul and M*C_out*(K-1) accumulation adds + M*C_out bias adds (paper eq. 3);
    input gradient: the transposed product, M*C_out*K mul and M*C_in*prod(kernel)*(C_out/groups - 1)
    adds, then the col2im scatter: N*C_in*(pairs - hits) adds, where pairs are the taps that land
    inside the input and hits the input positions they reach (exact, from the geometry);
    weight gradient C_out*K*M mul and C_out*K*(M-1) adds; bias gradient C_out*(M-1) adds (none
    when ``frozen``).
    """
    a = layer.attrs
    n = ctx.batch
    c_in, c_out, g, taps = a["in"], a["out"], a["groups"], a["taps"]
    m = n * math.prod(layer.out_shape[1:])
    k = c_in // g * taps
    cost = LayerCost(forward=_ops(mul=m * c_out * k, add=m * c_out * (k - 1) + (m * c_out if a["bias"] else 0)),
                     macs_forward=m * c_out * k)
    if ctx.input_grad[0]:
        cost.backward.update(_ops(mul=m * c_out * k,
                                  add=m * c_in * taps * (c_out // g - 1) + n * c_in * (a["pairs"] - a["hits"])))
        cost.macs_backward += m * c_out * k
    if not a.get("frozen"):
        cost.backward.update(_ops(mul=c_out * k * m, add=c_out * k * (m - 1) + (c_out * (m - 1) if a["bias"] else 0)))
        cost.macs_backward += c_out * k * m
    return cost


def _conv_transpose(layer: Layer, ctx: Context) -> LayerCost:
    """Transposed convolution: the input gradient of a convolution, run forward.

    With Kt = C_out/groups x prod(kernel) and M_in input positions over the batch: forward
    M_in*C_in*Kt mul, M_in*C_out*prod(kernel)*(C_in/groups - 1) adds for the product, the col2im
    scatter N*C_out*(pairs - hits) adds, and N*C_out*prod(out) bias adds; input gradient (a plain
    convolution) M_in*C_in*Kt mul and M_in*C_in*(Kt-1) adds; weight gradient C_in*Kt*M_in mul and
    C_in*Kt*(M_in-1) adds; bias gradient C_out*(M_out-1) adds (none when ``frozen``).
    """
    a = layer.attrs
    n = ctx.batch
    c_in, c_out, g, taps = a["in"], a["out"], a["groups"], a["taps"]
    m_in = n * math.prod(layer.in_shape[1:])
    m_out = n * math.prod(layer.out_shape[1:])
    kt = c_out // g * taps
    cost = LayerCost()
    cost.forward = _ops(mul=m_in * c_in * kt,
                        add=m_in * c_out * taps * (c_in // g - 1) + n * c_out * (a["pairs"] - a["hits"])
                        + (m_out * c_out if a["bias"] else 0))
    cost.macs_forward = m_in * c_in * kt
    if ctx.input_grad[0]:
        cost.backward.update(_ops(mul=m_in * c_in * kt, add=m_in * c_in * (kt - 1)))
        cost.macs_backward += m_in * c_in * kt
    if not a.get("frozen"):
        cost.backward.update(_ops(mul=c_in * kt * m_in, add=c_in * kt * (m_in - 1)
                                  + (c_out * (m_out - 1) if a["bias"] else 0)))
        cost.macs_backward += c_in * kt * m_in
    return cost


def _matmul(layer: Layer, ctx: Context) -> LayerCost:
    """A @ B with A [..., m, k], B [..., k, n]: b*m*n*k mul and b*m*n*(k-1) adds forward;
    dA = dC B^T, b*m*k*n mul and b*m*k*(n-1) adds; dB = A^T dC, b*k*n*m mul and
    b*k*n*(m-1) adds; each only if that operand needs a gradient."""
    a = layer.attrs
    b, m, k, n = ctx.batch * a["batch"], a["m"], a["k"], a["n"]
    cost = LayerCost()
    cost.forward = _ops(mul=b * m * n * k, add=b * m * n * (k - 1))
    cost.macs_forward = b * m * n * k
    if ctx.input_grad[0]:
        cost.backward.update(_ops(mul=b * m * k * n, add=b * m * k * (n - 1)))
        cost.macs_backward += b * m * k * n
    if ctx.input_grad[1]:
        cost.backward.update(_ops(mul=b * k * n * m, add=b * k * n * (m - 1)))
        cost.macs_backward += b * k * n * m
    return cost


def _softmax_rows(ctx, rows, d):
    """Softmax over ``rows`` rows of ``d``: d-1 cmp for the max, d sub, d exp, d-1 add, d div."""
    ops = _ops(cmp=rows * (d - 1), sub=rows * d, add=rows * (d - 1), div=rows * d)
    ops.update(ctx.recipe("exp", "forward", rows * d))
    return ops


def _softmax_rows_backward(rows, d):
    """dx = y * (dy - sum(dy * y)): d mul and d-1 add for the sum, d sub, d mul."""
    return _ops(mul=2 * rows * d, add=rows * (d - 1), sub=rows * d)


def sdpa_cost(ctx, *, batch_heads, t, s, hd, hdv, mask, kv_group=1, grads=(True, True, True), rows=None,
              pairs=None, cols=None, scale=True, additive=None):
    """Scaled dot-product attention over ``batch_heads`` heads, queries t, keys s.

    The score matrix of a head has ``rows`` query rows (t), ``pairs`` computed entries and
    ``cols`` keys seen by at least one row (``_shapes.attention_geometry``): dense t*s and s; with
    ``mask == "causal"`` and no geometry given, PyTorch's ``is_causal`` triangle (row i sees keys
    0..i). Only the entries a causal (or sliding-window) mask keeps are counted, as a causal kernel
    skips the masked ones (FlashAttention skips whole masked blocks). FLOP counters differ here:
    ``torch.utils.flop_counter.FlopCounterMode`` and fvcore price ``scaled_dot_product_attention``
    as dense whatever ``is_causal`` says, so for a causal layer their MACs exceed ours by the
    upper triangle, (t*s - pairs)(hd + hdv) per head.

    Forward, with R = rows, P = pairs, C = cols: scores Q K^T P*hd mul, P*(hd-1) add; the scale
    P mul (unless ``scale`` is false: T5); an additive mask or bias P add (a causal mask as a fill
    is free); softmax over each row's n_i entries: P-R cmp, P sub, P exp, P-R add, P div; P V
    P*hdv mul, (P-R)*hdv add.
    Backward: dP = dO V^T P*hdv mul, P*(hdv-1) add; the softmax gradient 2P mul, P-R add, P sub;
    the scale P mul; dV = P^T dO P*hdv mul, (P-C)*hdv add; dQ = dS K P*hd mul, (P-R)*hd add;
    dK = dS^T Q P*hd mul, (P-C)*hd add; with grouped-query attention (``kv_group`` query heads
    per key/value head) dK and dV are summed over the group, (kv_group-1) adds per element of
    the C keys. Dense (R = t, P = t*s, C = s) these are the matrix-product counts of ``_matmul``.
    """
    bh = batch_heads
    causal_default = mask == "causal"
    if additive is None:
        additive = mask == "additive"
    if pairs is None:
        from ._shapes import attention_geometry
        rows, pairs, cols = attention_geometry(t, s, causal=causal_default)
    r, p, c = bh * rows, bh * pairs, bh * cols
    fwd = _ops(mul=p * hd + (p if scale else 0) + p * hdv,
               add=p * (hd - 1) + (p - r) * hdv + (p if additive else 0))
    fwd.update(_ops(cmp=p - r, sub=p, add=p - r, div=p))
    fwd.update(ctx.recipe("exp", "forward", p))
    cost = LayerCost(forward=fwd, macs_forward=p * (hd + hdv))
    gq, gk, gv = grads
    bwd = Counter()
    if gq or gk:
        bwd.update(_ops(mul=p * hdv, add=p * (hdv - 1)))                           # dP
        bwd.update(_ops(mul=2 * p, add=p - r, sub=p))                              # softmax
        if scale:
            bwd.update(_ops(mul=p))
        cost.macs_backward += p * hdv
    groups = c // kv_group * (kv_group - 1)          # group sums over the keys of each kv head
    if gv:
        bwd.update(_ops(mul=p * hdv, add=(p - c) * hdv + groups * hdv))
        cost.macs_backward += p * hdv
    if gq:
        bwd.update(_ops(mul=p * hd, add=(p - r) * hd))
        cost.macs_backward += p * hd
    if gk:
        bwd.update(_ops(mul=p * hd, add=(p - c) * hd + groups * hd))
        cost.macs_backward += p * hd
    cost.backward = bwd
    return cost


def _sdpa(layer: Layer, ctx: Context) -> LayerCost:
    """Scaled dot-product attention on q, k, v inputs [heads, length, head_dim];
    see :func:`sdpa_cost` (a causal mask is PyTorch's ``is_causal`` triangle)."""
    a = layer.attrs
    cost = sdpa_cost(ctx, batch_heads=ctx.batch * a["heads"], t=a["t"], s=a["s"], hd=a["hd"], hdv=a["hdv"],
                     mask=a["mask"], kv_group=a["heads"] // a.get("kv_heads", a["heads"]), grads=ctx.input_grad,
                     rows=a["rows"], pairs=a["pairs"], cols=a["cols"],
                     scale=a["scale"], additive=a["additive"])
    cost.recompute, cost.recompute_macs = Counter(cost.forward), cost.macs_forward
    return cost


def _attention(layer: Layer, ctx: Context) -> LayerCost:
    """Multi-head attention (``nn.MultiheadAttention``, and the attention of transformer
    language models): Q, K, V projections (linear; Q to heads*head_dim, K and V from
    ``kdim``/``vdim`` to kv_heads*head_dim, grouped-query attention), optional rotary embedding
    on Q and K, the scaled dot-product core over T queries and S keys (:func:`sdpa_cost`, over
    the entries its causal mask and sliding window keep), and the output projection.

    Rotary embedding (RoPE): x*cos + rotate_half(x)*sin per element of Q and K, 2 mul + 1 add
    forward and the same backward (rotate_half is a permutation and sign flip, free); the cos/sin
    tables depend only on positions and are taken as precomputed (vLLM caches them once; Hugging
    Face recomputes them once per forward for all layers), not counted.
    With ``past`` cached tokens (a decode step) only the T new tokens are projected; their keys
    and values join the cache of ``past`` keys, which the queries read (``s = past + T`` keys).
    A cross-attention (a second input, the memory of S tokens) projects K and V from the memory,
    not at all when ``memory_cached`` (a decoder step reusing the keys and values of its first
    step). A T5 relative-position bias (``position_bias``) is added to the scores (P adds per
    head); its table's gradient gathers one add per score entry and layer.

    With ``masks`` = 2 (an attention mask and a key-padding mask) the two are merged first, one
    add per score entry. Dropout on the attention probabilities (training, p > 0): 1 cmp + 1 mul
    per score entry forward, 1 mul backward. ``weights: mean`` (``need_weights`` with the default
    ``average_attn_weights``) also returns the probabilities averaged over the heads,
    (heads-1)*P adds + T*S div per sample; no gradient flows through them.
    In the backward pass an input read by several projections gets their input gradients summed:
    self-attention (one input) 2*T*D adds, a shared key/value input (two inputs) S*kdim adds."""
    a = layer.attrs
    n, t, d, dkv, inner = ctx.batch, a["t"], a["dim"], a["dkv"], a["inner"]
    s = a["s"]
    kdim, vdim = a["kdim"], a["vdim"]
    grads = ctx.input_grad
    gq = grads[0]
    gk = grads[1] if len(grads) > 1 else gq
    gv = grads[2] if len(grads) > 2 else gk
    # a self-attention projects only its T new tokens; the keys of ``past`` come from the cache
    rows, kv_rows = n * t, (n * s if a["cross"] else n * t)
    if a["past"] and ctx.training:
        ctx.missing.append("no backward through a KV cache (past > 0)")
    cost = LayerCost()
    cost += linear_cost(rows, d, inner, bias=a["bias"], input_grad=gq)
    if not a["memory_cached"]:
        cost += linear_cost(kv_rows, kdim, dkv, bias=a["bias"], input_grad=gk)
        cost += linear_cost(kv_rows, vdim, dkv, bias=a["bias"], input_grad=gv)
    if a["rope"]:
        elements = rows * inner + (0 if a["memory_cached"] else kv_rows * dkv)
        cost.forward.update(_ops(mul=2 * elements, add=elements))
        # needed for the Q and K weight gradients even where x needs none
        cost.backward.update(_ops(mul=2 * elements, add=elements))
    bh = n * a["heads"]
    core = sdpa_cost(ctx, batch_heads=bh, t=t, s=s, hd=a["hd"], hdv=a["hd"], mask=a["mask"],
                     kv_group=a["heads"] // a["kv_heads"], rows=a["rows"], pairs=a["pairs"], cols=a["cols"],
                     scale=a["scale"], additive=a["additive"])
    recompute = Counter(core.forward)
    cost += core
    scores = bh * a["pairs"]
    if a["position_bias"] != "none":
        # each layer adds its score gradient into the shared bias table's gradient (a scatter by
        # bucket, accumulated as an embedding's rows are): one add per score entry
        cost.backward.update(_ops(add=scores))
    if a["masks"] > 1:
        cost.forward.update(_ops(add=(a["masks"] - 1) * scores))
    if a["dropout"] and ctx.training:
        cost.forward.update(_ops(cmp=scores, mul=scores))
        cost.backward.update(_ops(mul=scores))
        recompute.update(_ops(cmp=scores, mul=scores))
    # selective recomputation re-runs the core (scores, softmax, its dropout, P V), not the projections
    cost.recompute, cost.recompute_macs = recompute, core.macs_forward
    if a["weights"] == "mean":
        cost.forward.update(_ops(add=(a["heads"] - 1) * n * a["pairs"], div=n * t * s))
    cost += linear_cost(rows, inner, d, bias=a["out_bias"], input_grad=True)
    if len(grads) == 1 and gq:
        cost.backward.update(_ops(add=2 * rows * d))
    elif len(grads) == 2 and gk:
        cost.backward.update(_ops(add=kv_rows * kdim))
    return cost


def _moe(layer: Layer, ctx: Context) -> LayerCost:
    """Mixture-of-experts feed-forward (Mixtral's sparse MoE block) over R = N*T tokens, E
    experts, the top k per token, expert width F, model width D; A = R*k expert applications.

    Forward: the router linear R*E*D mul, R*E*(D-1) add; a softmax over E per token; the top k
    by k passes of a running maximum, sum_{j<k} (E-1-j) cmp per token; renormalizing the k
    weights (``normalize``) k-1 add and k div per token; each application runs one expert's MLP
    (gate and up linears D -> F, the activation's recipe and F mul for the gated product, the
    down linear F -> D; counted as ``linear_cost``), scales its output by its weight (D mul) and
    the k outputs are summed ((k-1)*D add per token). Only the chosen experts run: the MACs are
    R*E*D + A*(2 or 3)*D*F.
    Backward: the k output gradients dy*w (A*D mul) and the weight gradients dot(dy, out) (A*D
    mul, A*(D-1) add); the renormalization dr_i = (dw_i - sum_j dw_j w_j)/S (k mul, k-1 add,
    k sub, k div per token); the scatter into E entries is free; the softmax gradient over E; the
    router's input and weight gradients; per application the expert MLP's input gradients
    (as ``linear_cost``; gate and up summed, D add), its gated-product and activation gradients,
    and its weight gradients. An expert's weight gradient sums over the tokens routed to it: with
    every expert receiving at least one token (min(E, A) experts used) that is
    (weights)*(A - min(E, A)) adds in all; the count assumes this. The input gradient of each
    token sums its k expert paths and the router's, k*D adds.
    """
    a = layer.attrs
    n = ctx.batch
    d, e, k, ffn = a["dim"], a["experts"], a["top_k"], a["ffn"]
    tokens = n * math.prod(layer.in_shape[:-1])
    apps = tokens * k
    used = min(e, apps)
    ig = ctx.input_grad[0]
    gated, bias = a["gated"], a["bias"]
    cost = linear_cost(tokens, d, e, bias=False, input_grad=ig)
    cost.forward.update(_softmax_rows(ctx, tokens, e))
    cost.forward.update(_ops(cmp=tokens * sum(e - 1 - j for j in range(k))))
    if a["normalize"]:
        cost.forward.update(_ops(add=tokens * (k - 1), div=tokens * k))
    expert = LayerCost()
    expert += linear_cost(apps, d, ffn, bias=bias, input_grad=True)
    if gated:
        expert += linear_cost(apps, d, ffn, bias=bias, input_grad=True)
    act = ctx.recipe(a["act"], "forward", apps * ffn) if a["act"] != "relu" else _ops(cmp=apps * ffn)
    expert.forward.update(act)
    if gated:
        expert.forward.update(_ops(mul=apps * ffn))
    expert += linear_cost(apps, ffn, d, bias=bias, input_grad=True)
    # a weight gradient of each expert sums over its own tokens: A - used adds per weight in all,
    # where one linear_cost over all A rows counts A - 1
    n_in = 2 if gated else 1
    expert.backward.subtract(_ops(add=(used - 1) * (n_in * d * ffn + ffn * d)
                                  + ((used - 1) * (n_in * ffn + d) if bias else 0)))
    if gated:
        expert.backward.update(_ops(mul=2 * apps * ffn, add=apps * d))      # product rule; gate+up sum
    if a["act"] == "relu":
        expert.backward.update(_ops(cmp=apps * ffn))
    else:
        expert.backward.update(ctx.recipe(a["act"], "backward", apps * ffn))
    if not ig:
        # the first expert linears' input gradients are not needed
        expert.backward.subtract(_ops(mul=n_in * apps * d * ffn, add=n_in * apps * d * (ffn - 1)
                                      + (apps * d if gated else 0)))
        expert.macs_backward -= n_in * apps * d * ffn
    cost += expert
    cost.forward.update(_ops(mul=apps * d, add=tokens * (k - 1) * d))
    cost.backward.update(_ops(mul=2 * apps * d, add=apps * (d - 1)))
    if a["normalize"]:
        cost.backward.update(_ops(mul=tokens * k, add=tokens * (k - 1), sub=tokens * k, div=tokens * k))
    cost.backward.update(_softmax_rows_backward(tokens, e))
    if ig:
        cost.backward.update(_ops(add=tokens * k * d))
    return cost


def rnn_cost(ctx, a, *, input_grad, h0_grad=False, c0_grad=False):
    """``nn.LSTM``/``nn.GRU``/``nn.RNN`` over N = ``ctx.batch`` sequences of T steps, counted
    per layer and direction as ATen's cells compute them. Initial states (zeros unless given) are
    multiplied like any state, as the dense kernels do. With R = N*T rows, gate width G*H
    (G = 4, 3, 1), layer input width I (the model input, then directions*H_out) and state
    width H_out (LSTM's proj, else H):

    Forward, per layer and direction: the input and the hidden products (``linear_cost``: R*G*H*I
    and R*G*H*H_out mul, their accumulation adds, one bias add each per gate element if ``bias``)
    and one add joining them per gate element; then per hidden unit and row:
    LSTM: sigmoid x3 and tanh x2 (recipes), c = f*c + i*g (2 mul, 1 add), h = o*tanh(c) (1 mul),
    and with proj h = W_hr h (R*P*H mul, R*P*(H-1) add);
    GRU: sigmoid x2 and tanh (recipes), n = tanh(x_n + r*h_n) (1 mul, 1 add), h = (h - n)*z + n
    (1 sub, 1 mul, 1 add); RNN: tanh (recipe) or relu (1 cmp).
    Between layers, dropout in training: 1 cmp + 1 mul per element forward, 1 mul backward.

    Backward through time (steps with a later step, N*(T-1) rows, also take the state gradient
    coming back from it: 1 add per state element, H_out for h and H for the LSTM cell; steps of
    the last layer take none of these h adds when its output gets no gradient, ``output_grad``
    false; a final state the loss reads, ``h_n_grad`` / ``c_n_grad``, adds its gradient into its
    layer's last step, N*H_out (N*H for c) adds per layer and direction, except h_n into the
    last layer when its output gets no gradient). An output step the loss does not read (only
    ``out[:, -1]`` used) still gets its zero gradient added, as PyTorch's autograd does:
    LSTM: proj dH = W_hr^T dh and dW_hr (products as ``linear_cost``); do = dh*tanh(c), dtanh =
    dh*o (2 mul), tanh backward (recipe), df = dc*c_prev, di = dc*g, dg = dc*i (3 mul), the
    cell gradient to the previous step dc*f (1 mul, for N*(T-1) rows, N more if c0 needs one),
    sigmoid backward x3 and tanh backward (recipes); GRU: dz = dh*(h - n), dh*z (2 mul),
    dn = dh - dh*z (1 sub), tanh backward, dr = dn'*h_n, dh_n = dn'*r (2 mul), sigmoid backward
    x2, and the previous step's dh = W_hh^T dgates + dh*z (1 more add); RNN: tanh backward
    (recipe) or relu (1 cmp). Weight gradients: dW_ih = dgates^T x, dW_hh = dgates^T h over the
    R rows (G*H*I*R and G*H*H_out*R mul, G*H*I*(R-1) and G*H*H_out*(R-1) adds), and each bias
    G*H*(R-1) adds. The input gradient W_ih^T dgates (R*I*G*H mul, R*I*(G*H-1) adds) for layers
    above the first, and for the first only if its input needs one; the previous state's
    W_hh^T dgates for N*(T-1) rows (N*T if h0 needs a gradient). Two directions reading one
    input sum their input gradients, 1 add per input element.
    """
    n, t, hid, h_out, g = ctx.batch, a["t"], a["hidden"], a["h_out"], a["gates"]
    kind, proj, directions = a["kind"], a["proj"], a["directions"]
    bias = a["bias"]
    rows = n * t
    rec = n * (t - 1)
    gh = g * hid
    training = ctx.training
    cost = LayerCost()
    fwd, bwd = cost.forward, cost.backward
    for layer in range(a["layers"]):
        width = a["in"] if layer == 0 else directions * h_out
        x_grad = input_grad if layer == 0 else True
        for _ in range(directions):
            # forward: gates = (W_ih x + b_ih) + (W_hh h + b_hh)
            fwd.update(_ops(mul=rows * gh * (width + h_out),
                            add=rows * gh * (width - 1 + h_out - 1) + (2 * rows * gh if bias else 0) + rows * gh))
            cost.macs_forward += rows * gh * (width + h_out)
            e = rows * hid
            if kind == "lstm":
                fwd.update(ctx.recipe("sigmoid", "forward", 3 * e))
                fwd.update(ctx.recipe("tanh", "forward", 2 * e))
                fwd.update(_ops(mul=3 * e, add=e))
                if proj:
                    fwd.update(_ops(mul=rows * proj * hid, add=rows * proj * (hid - 1)))
                    cost.macs_forward += rows * proj * hid
            elif kind == "gru":
                fwd.update(ctx.recipe("sigmoid", "forward", 2 * e))
                fwd.update(ctx.recipe("tanh", "forward", e))
                fwd.update(_ops(mul=2 * e, add=2 * e, sub=e))
            elif a["nonlinearity"] == "relu":
                fwd.update(_ops(cmp=e))
            else:
                fwd.update(ctx.recipe("tanh", "forward", e))
            # backward through time: dh from the output (or the layer above) + the next step; a
            # final state the loss reads adds its gradient into its layer's last step
            top = layer == a["layers"] - 1
            if a.get("output_grad", True) or not top:
                bwd.update(_ops(add=rec * h_out + (n * h_out if a.get("h_n_grad") else 0)))
            if kind == "lstm" and a.get("c_n_grad"):
                bwd.update(_ops(add=n * hid))
            if kind == "lstm":
                if proj:
                    bwd.update(_ops(mul=2 * rows * hid * proj, add=rows * hid * (proj - 1) + proj * hid * (rows - 1)))
                    cost.macs_backward += 2 * rows * hid * proj
                bwd.update(_ops(mul=2 * e))                                 # do, dtanh(c)
                bwd.update(ctx.recipe("tanh", "backward", e))
                bwd.update(_ops(add=rec * hid))                            # dc from h + next step
                bwd.update(_ops(mul=3 * e + rec * hid + (n * hid if c0_grad else 0)))
                bwd.update(ctx.recipe("sigmoid", "backward", 3 * e))
                bwd.update(ctx.recipe("tanh", "backward", e))
            elif kind == "gru":
                bwd.update(_ops(mul=2 * e, sub=e))                          # dz, dh*z, dn
                bwd.update(ctx.recipe("tanh", "backward", e))
                bwd.update(_ops(mul=2 * e))                                 # dr, dh_n
                bwd.update(ctx.recipe("sigmoid", "backward", 2 * e))
            elif a["nonlinearity"] == "relu":
                bwd.update(_ops(cmp=e))
            else:
                bwd.update(ctx.recipe("tanh", "backward", e))
            # weight and bias gradients over all rows
            bwd.update(_ops(mul=gh * (width + h_out) * rows, add=gh * (width + h_out) * (rows - 1)
                            + (2 * gh * (rows - 1) if bias else 0)))
            cost.macs_backward += gh * (width + h_out) * rows
            if x_grad:
                bwd.update(_ops(mul=rows * width * gh, add=rows * width * (gh - 1)))
                cost.macs_backward += rows * width * gh
            state_rows = rec + (n if h0_grad else 0)      # every layer starts from its slice of h0
            bwd.update(_ops(mul=state_rows * h_out * gh, add=state_rows * h_out * (gh - 1)
                            + (state_rows * hid if kind == "gru" else 0)))
            cost.macs_backward += state_rows * h_out * gh
        if directions > 1 and x_grad:
            bwd.update(_ops(add=(directions - 1) * rows * width))
        if layer < a["layers"] - 1 and a["dropout"] and training:
            e = rows * directions * h_out
            fwd.update(_ops(cmp=e, mul=e))
            bwd.update(_ops(mul=e))
    return cost


def _rnn(layer: Layer, ctx: Context) -> LayerCost:
    """LSTM, GRU and plain RNN stacks; see :func:`rnn_cost`."""
    grads = ctx.input_grad
    return rnn_cost(ctx, layer.attrs, input_grad=grads[0], h0_grad=len(grads) > 1 and grads[1],
                    c0_grad=len(grads) > 2 and grads[2])


# --- pooling ----------------------------------------------------------------------------------

def _pool(layer: Layer, ctx: Context) -> LayerCost:
    """Max, average, adaptive and global pooling, per channel and sample.

    ``pairs`` are the (window, tap) pairs inside the input (padding excluded), ``hits`` the input
    positions they cover. Max: pairs - outputs cmp (window size - 1 per output); backward routes
    each output gradient to its argmax, free unless windows overlap, then 1 add per output.
    Average: pairs - outputs adds and 1 div per output; backward 1 div per output and
    pairs - hits adds to accumulate overlapping contributions.
    """
    a = layer.attrs
    channels = ctx.batch * layer.in_shape[0]
    outputs = math.prod(layer.out_shape[1:])
    pairs, hits = a["pairs"], a["hits"]
    cost = LayerCost()
    if a["kind"] == "max":
        cost.forward = _ops(cmp=channels * (pairs - outputs))
        if ctx.input_grad[0] and a["overlap"]:
            cost.backward = _ops(add=channels * outputs)
    else:
        cost.forward = _ops(add=channels * (pairs - outputs), div=channels * outputs)
        if ctx.input_grad[0]:
            cost.backward = _ops(div=channels * outputs, add=channels * (pairs - hits))
    return cost


# --- normalization ----------------------------------------------------------------------------

def _norm(layer: Layer, ctx: Context) -> LayerCost:
    """Batch, layer, RMS and group normalization, over groups of D elements.

    Batchnorm normalizes each channel over the batch and space (D = N*prod(spatial)), the others
    each sample's groups (layernorm/rmsnorm: the last ``dims`` dims; groupnorm: C/groups channels).
    Statistics per group: mean D-1 add + 1 div; x - mean D sub; variance D mul, D-1 add, 1 div
    (RMSNorm: mean square D mul, D-1 add, 1 div, no mean); + eps 1 add; rsqrt (recipe); per
    element 1 mul for the normalized value, then 1 mul (gamma) and 1 add (beta) if affine.
    Batchnorm in training also updates its running mean and variance, 5 mul + 2 add per channel.
    Batchnorm in eval mode folds into per channel a = gamma*rsqrt(var+eps), b = beta - mean*a
    (1 add, rsqrt, 2 mul, 1 sub) and per element 1 mul + 1 add.
    Backward, with g = dy*gamma (1 mul per element if affine): c1 = sum(g) (D-1 add, centered
    only), c2 = sum(g*xhat) (D mul, D-1 add); dx = rstd/D*(D*g - c1 - xhat*c2) (3 mul + 2 sub per
    element, 1 div per group; RMSNorm: dx = rstd*(g - xhat*c2/D), 2 mul + 1 sub per element and
    1 div per group); dgamma = sum(dy*xhat) (1 mul per element, E - n_affine adds); dbeta =
    sum(dy) (E - n_affine adds).
    """
    a = layer.attrs
    n = ctx.batch
    e = n * math.prod(layer.in_shape)
    if a["kind"] == "batchnorm":
        d, groups = e // a["groups"], a["groups"]
    else:
        d, groups = a["group"], n * a["groups"]
    centered, affine, bias = a["centered"], a["affine"], a["bias"]
    cost = LayerCost()
    fwd = cost.forward
    if a["kind"] == "batchnorm" and not ctx.training:
        fwd.update(_ops(add=groups + e, mul=groups * (2 if affine else 1) + e, sub=groups))
        fwd.update(ctx.recipe("rsqrt", "forward", groups))
        return cost
    if centered:
        fwd.update(_ops(add=groups * (d - 1), div=groups, sub=e))
    fwd.update(_ops(mul=e, add=groups * (d - 1) + groups, div=groups))   # (x-mean)^2 or x^2, sum, /D, +eps
    fwd.update(ctx.recipe("rsqrt", "forward", groups))
    fwd.update(_ops(mul=e))                                                  # xhat
    if affine:
        fwd.update(_ops(mul=e, add=e if bias else 0))
    if a["kind"] == "batchnorm":
        fwd.update(_ops(mul=5 * groups, add=2 * groups))
    bwd = cost.backward
    if ctx.input_grad[0]:
        if affine:
            bwd.update(_ops(mul=e))
        bwd.update(_ops(mul=e, add=groups * (d - 1), div=groups))            # c2
        if centered:
            bwd.update(_ops(add=groups * (d - 1), mul=3 * e, sub=2 * e))
        else:
            bwd.update(_ops(mul=2 * e, sub=e))
    if affine:
        bwd.update(_ops(mul=e, add=e - a["n_affine"]))
        if bias:
            bwd.update(_ops(add=e - a["n_affine"]))
    return cost


# --- embeddings -------------------------------------------------------------------------------

def _embedding(layer: Layer, ctx: Context) -> LayerCost:
    """Table lookup: free forward. Backward: each token's gradient row is accumulated into the
    zero-initialised table gradient, N*T*D adds; no input gradient (ids are integers)."""
    e = _elements(layer, ctx)
    return LayerCost(backward=_ops(add=0 if layer.attrs.get("frozen") else e))


def _positional_embedding(layer: Layer, ctx: Context) -> LayerCost:
    """x + P[position]: 1 add per element. Backward: the input gradient passes through; the table
    gradient sums the batch, N*T*D - min(rows, T)*D adds."""
    e = _elements(layer, ctx)
    t, dim = layer.in_shape[0], layer.attrs["dim"]
    used = min(layer.attrs["rows"], t) * dim * math.prod(layer.in_shape[1:-1])
    return LayerCost(forward=_ops(add=e), backward=_ops(add=e - used))


def _cls_token(layer: Layer, ctx: Context) -> LayerCost:
    """Prepend a learned token: free forward; its gradient sums the batch, (N-1)*D adds."""
    return LayerCost(backward=_ops(add=(ctx.batch - 1) * layer.attrs["dim"]))


def _dropout(layer: Layer, ctx: Context) -> LayerCost:
    """Training: 1 cmp (uniform < p) and 1 mul (x * mask/(1-p)) per element, the random draw itself
    is not counted; backward 1 mul per element. Eval, or p = 0 (PyTorch returns the input): identity,
    free."""
    if not ctx.training or layer.attrs["p"] == 0:
        return LayerCost()
    e = _elements(layer, ctx)
    return LayerCost(forward=_ops(cmp=e, mul=e), backward=_ops(mul=e if ctx.input_grad[0] else 0))


# --- elementwise ------------------------------------------------------------------------------

def _add(layer: Layer, ctx: Context) -> LayerCost:
    """Residual add of n inputs: (n-1) adds per element; backward passes dy to each input, free
    (the fan-out sum at the producer is counted by the engine)."""
    return LayerCost(forward=_ops(add=(layer.attrs["n"] - 1) * _elements(layer, ctx)))


def _mul(layer: Layer, ctx: Context) -> LayerCost:
    """Elementwise product of n inputs: (n-1) mul per element; the gradient of each input that
    needs one is dy times the other n-1 inputs, (n-1) mul per element."""
    k = layer.attrs["n"] - 1
    e = _elements(layer, ctx)
    return LayerCost(forward=_ops(mul=k * e), backward=_ops(mul=k * e * sum(ctx.input_grad)))


def _relu(layer: Layer, ctx: Context) -> LayerCost:
    """max(x, 0): 1 cmp per element; backward dy where x > 0, 1 cmp per element (select free)."""
    e = _elements(layer, ctx)
    return LayerCost(forward=_ops(cmp=e), backward=_ops(cmp=e if ctx.input_grad[0] else 0))


def _relu6(layer: Layer, ctx: Context) -> LayerCost:
    """min(max(x, 0), 6): 2 cmp per element; backward 2 cmp per element (0 < x < 6)."""
    e = _elements(layer, ctx)
    return LayerCost(forward=_ops(cmp=2 * e), backward=_ops(cmp=2 * e if ctx.input_grad[0] else 0))


def _leaky_relu(layer: Layer, ctx: Context) -> LayerCost:
    """x if x > 0 else slope*x: 1 cmp + 1 mul per element, forward and backward."""
    e = _elements(layer, ctx)
    cost = LayerCost(forward=_ops(cmp=e, mul=e))
    if ctx.input_grad[0]:
        cost.backward = _ops(cmp=e, mul=e)
    return cost


def _recipe_activation(recipe_name=None):
    """Factory: an elementwise function priced by one profile recipe per element, forward and
    (for the input gradient) backward; the recipe's backward includes the multiply by dy."""
    def handler(layer: Layer, ctx: Context) -> LayerCost:
        name = recipe_name or ("gelu_tanh" if layer.attrs.get("approximate") == "tanh" else "gelu")
        e = _elements(layer, ctx)
        cost = LayerCost(forward=ctx.recipe(name, "forward", e))
        if ctx.input_grad[0]:
            cost.backward = ctx.recipe(name, "backward", e)
        return cost
    handler.__doc__ = (f"Elementwise {recipe_name or 'gelu (erf form) or gelu_tanh'}: one profile recipe "
                       "per element forward, its backward recipe per element for the input gradient.")
    return handler


def _softmax(layer: Layer, ctx: Context) -> LayerCost:
    """Softmax along ``axis`` (D elements per row): D-1 cmp (max), D sub, D exp, D-1 add, D div;
    backward dx = y*(dy - sum(dy*y)): 2D mul, D-1 add, D sub."""
    d = layer.attrs["dim"]
    rows = _elements(layer, ctx) // d
    cost = LayerCost(forward=_softmax_rows(ctx, rows, d))
    if ctx.input_grad[0]:
        cost.backward = _softmax_rows_backward(rows, d)
    return cost


def _log_softmax(layer: Layer, ctx: Context) -> LayerCost:
    """log softmax along ``axis``: D-1 cmp (max), D sub, D exp, D-1 add, 1 log, D sub;
    backward dx = dy - exp(y)*sum(dy): D exp, D-1 add, D mul, D sub."""
    d = layer.attrs["dim"]
    rows = _elements(layer, ctx) // d
    fwd = _ops(cmp=rows * (d - 1), sub=2 * rows * d, add=rows * (d - 1))
    fwd.update(ctx.recipe("exp", "forward", rows * d))
    fwd.update(ctx.recipe("log", "forward", rows))
    cost = LayerCost(forward=fwd)
    if ctx.input_grad[0]:
        cost.backward = _ops(add=rows * (d - 1), mul=rows * d, sub=rows * d)
        cost.backward.update(ctx.recipe("exp", "forward", rows * d))
    return cost


def _per_element(ctx, table, direction, times):
    out = Counter()
    for name, n in table.items():
        if name in OPS:
            out[name] += n * times
        else:
            out.update(ctx.recipe(name, direction, n * times))
    return out


def _elementwise(layer: Layer, ctx: Context) -> LayerCost:
    """A generic elementwise function: ``ops`` per output element forward (basic ops, or recipe
    names priced by the profile's forward recipe), ``backward`` per output element for the input
    gradients (recipe names priced by their backward recipe; ``backward_inputs``: a table per
    input, counted for the inputs that need a gradient); inputs broadcast to the output
    shape get their gradient summed back, (output elements - input elements) adds each. A layer
    without a ``backward`` table that must produce an input gradient, or with parameters in
    training (their gradient has no formula here), is reported incomplete."""
    a = layer.attrs
    e = math.prod(layer.out_shape) if a.get("once") else _elements(layer, ctx)
    cost = LayerCost(forward=_per_element(ctx, a["ops"], "forward", e))
    if any(ctx.input_grad) and ctx.training:
        per_input = a.get("backward_inputs")
        if per_input is not None:
            table: Counter = Counter()
            for ops, grad in zip(per_input, ctx.input_grad):
                if grad:
                    table.update(ops)
            cost.backward = _per_element(ctx, table, "backward", e)
            _broadcast_grad(layer, ctx, cost, e)
        elif a["backward"] is None:
            ctx.missing.append(f"no backward formula for {a['op']}")
        else:
            cost.backward = _per_element(ctx, a["backward"], "backward", e)
            _broadcast_grad(layer, ctx, cost, e)
    if layer.params and ctx.training:
        ctx.missing.append(f"no weight-gradient formula for the parameters of {a['op']}")
    return cost


def _broadcast_grad(layer, ctx, cost, e):
    """Inputs broadcast to the ``e`` output elements get their gradient summed back: e - (their
    elements) adds each (a batch-free input, ``once_inputs``, also sums the batch)."""
    once = layer.attrs.get("once_inputs") or (False,) * len(layer.in_shapes)
    for shape, grad, single in zip(layer.in_shapes, ctx.input_grad, once):
        if grad:
            cost.backward.update(_ops(add=e - (1 if single else ctx.batch) * math.prod(shape)))


def _shape_op(layer: Layer, ctx: Context) -> LayerCost:
    """Data movement, free forward. Backward: an expand (``grad: broadcast``) sums the gradient
    back to its input, out - in elements adds; a gather (``grad: gather``) adds each gathered
    element's gradient into its source, 1 add per output element (the embedding rule)."""
    a = layer.attrs
    cost = LayerCost()
    if a.get("grad", "none") == "none" or not ctx.input_grad[0]:
        return cost
    e = math.prod(layer.out_shape) if a.get("once") else _elements(layer, ctx)
    if a["grad"] == "gather":
        cost.backward = _ops(add=e)
    else:
        single = (a.get("once_inputs") or (False,))[0]
        cost.backward = _ops(add=e - (1 if single else ctx.batch) * math.prod(layer.in_shape))
    return cost


def _stochastic_depth(layer: Layer, ctx: Context) -> LayerCost:
    """Training: per sample (mode row; once for mode batch) a Bernoulli draw (1 cmp, the random
    number itself not counted) and noise/(1-p) (1 div), then x * noise (1 mul per element);
    backward 1 mul per element. Eval: identity, free."""
    if not ctx.training or layer.attrs["p"] == 0:
        return LayerCost()
    e = _elements(layer, ctx)
    draws = ctx.batch if layer.attrs["mode"] == "row" else 1
    return LayerCost(forward=_ops(cmp=draws, div=draws, mul=e), backward=_ops(mul=e if ctx.input_grad[0] else 0))


def _cumsum(layer: Layer, ctx: Context) -> LayerCost:
    """A running sum over rows of L elements: L-1 adds per row; backward the reversed running
    sum of the gradient, L-1 adds per row."""
    e = math.prod(layer.out_shape) if layer.attrs.get("once") else _elements(layer, ctx)
    length = layer.attrs["length"]
    adds = e // length * (length - 1)
    return LayerCost(forward=_ops(add=adds), backward=_ops(add=adds if ctx.input_grad[0] else 0))


def _reduce(layer: Layer, ctx: Context) -> LayerCost:
    """Reduction of E_in input elements to E_out outputs: sum E_in - E_out adds (mean: + E_out
    div; max/min: E_in - E_out cmp). Backward: the gradient is broadcast back, free (mean: E_out
    div for dy/n; max/min: routed to the extremum, free). A ``once`` output counts its elements
    once per batch, a per-sample input (``once_inputs: [false]``) the batch's: a reduction over
    the whole batch reads batch x its per-sample elements."""
    once = layer.attrs.get("once")
    once_in = (layer.attrs.get("once_inputs") or (once,))[0]
    e_in = (1 if once_in else ctx.batch) * math.prod(layer.in_shape)
    e_out = (1 if once else ctx.batch) * math.prod(layer.out_shape)
    kind = layer.attrs["kind"]
    cost = LayerCost()
    if kind in ("max", "min"):
        cost.forward = _ops(cmp=e_in - e_out)
    else:
        cost.forward = _ops(add=e_in - e_out, div=e_out if kind == "mean" else 0)
        if kind == "mean" and ctx.input_grad[0]:
            cost.backward = _ops(div=e_out)
    return cost


def _free(layer: Layer, ctx: Context) -> LayerCost:
    """No arithmetic: data movement only (concat, flatten, reshape, transpose, select, identity),
    forward and backward."""
    return LayerCost()


ZERO_COST = frozenset({"concat", "flatten", "reshape", "transpose", "identity", "select", "parameter"})

FORMULAS = {
    "elementwise": _elementwise,
    "reduce": _reduce,
    "cumsum": _cumsum,
    "linear": _linear,
    "matmul": _matmul,
    "bmm": _matmul,
    "sdpa": _sdpa,
    "attention": _attention,
    "moe": _moe,
    "lstm": _rnn,
    "gru": _rnn,
    "rnn": _rnn,
    "embedding": _embedding,
    "positional_embedding": _positional_embedding,
    "cls_token": _cls_token,
    "dropout": _dropout,
    "add": _add,
    "mul": _mul,
    "relu": _relu,
    "relu6": _relu6,
    "leaky_relu": _leaky_relu,
    "shape_op": _shape_op,
    "stochastic_depth": _stochastic_depth,
    "hardswish": _recipe_activation("hardswish"),
    "hardsigmoid": _recipe_activation("hardsigmoid"),
    "sigmoid": _recipe_activation("sigmoid"),
    "tanh": _recipe_activation("tanh"),
    "gelu": _recipe_activation(None),
    "silu": _recipe_activation("silu"),
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "batchnorm": _norm,
    "layernorm": _norm,
    "rmsnorm": _norm,
    "groupnorm": _norm,
    "global_avgpool": _pool,
    "global_maxpool": _pool,
}
for _nd in (1, 2, 3):
    FORMULAS[f"conv{_nd}d"] = _conv
    FORMULAS[f"conv_transpose{_nd}d"] = _conv_transpose
    for _kind in ("maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool"):
        FORMULAS[f"{_kind}{_nd}d"] = _pool
for _name in ZERO_COST:
    FORMULAS[_name] = _free
