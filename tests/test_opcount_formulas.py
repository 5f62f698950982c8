"""opcount formulas: each layer handler against a hand count, with a small fake profile whose
recipes have distinct, easy counts (so a test sees which recipe a handler used)."""
import numpy as np
import pytest

import opcount
from opcount._shapes import adaptive_windows, conv_geometry

OPS = ("add", "sub", "mul", "div", "sqrt", "cmp")


class FakeProfile:
    name = "fake"
    RECIPES = {
        "exp": ({"mul": 3}, {"mul": 1}),
        "log": ({"div": 5}, {"div": 1}),
        "sigmoid": ({"add": 1, "div": 1}, {"mul": 2, "sub": 1}),
        "tanh": ({"sqrt": 1}, {"mul": 2}),
        "gelu": ({"mul": 7}, {"add": 7}),
        "gelu_tanh": ({"mul": 11}, {"add": 11}),
        "silu": ({"div": 2}, {"sub": 2}),
        "rsqrt": ({"sqrt": 1, "div": 1}, {"mul": 4}),
    }

    def __init__(self, drop=()):
        self.recipes = {k: v for k, v in self.RECIPES.items() if k not in drop}

    def has_recipe(self, name):
        return name in self.recipes

    def recipe_ops(self, name, direction="forward"):
        return dict(self.recipes[name][0 if direction == "forward" else 1])


FAKE = FakeProfile()


def ops(**kw):
    return {op: kw.get(op, 0) for op in OPS}


def run(input_shape, layers, phase="inference", batch=1, input_grad=False, profile=FAKE, **model):
    spec = {"name": "t", "input": list(input_shape), "layers": layers, "input_grad": input_grad, **model}
    return opcount.count_model(opcount.load_model(spec), profile, phase=phase, batch=batch)


def row(result, name):
    return next(layer for layer in result.layers if layer.name == name)


# --- linear -----------------------------------------------------------------------------------

def test_linear_forward_is_paper_eq1():
    r = run([3], [{"type": "linear", "out": 2, "name": "fc"}])
    # per output: 3 mul, 2 accumulation adds + 1 bias add
    assert row(r, "fc").stages["forward"] == ops(mul=6, add=6)
    assert r.params == 8 and r.macs == 6 and r.flops == 12


def test_linear_without_bias():
    r = run([3], [{"type": "linear", "out": 2, "bias": False, "name": "fc"}])
    assert row(r, "fc").stages["forward"] == ops(mul=6, add=4)
    assert r.params == 6


def test_linear_training_batch2_with_input_grad():
    r = run([3], [{"type": "linear", "out": 2, "name": "fc"}], phase="training", batch=2, input_grad=True)
    fc = row(r, "fc")
    assert fc.stages["forward"] == ops(mul=12, add=12)
    # dX: 2 rows x 3 inputs x (2 mul, 1 add); dW: 6 weights x (2 mul, 1 add); db: 2 x 1 add
    assert fc.stages["backward"] == ops(mul=24, add=6 + 6 + 2)
    assert fc.stages["update"] == ops(mul=8, sub=8)          # sgd on 8 parameters
    assert fc.macs == {"forward": 12, "backward": 24}


def test_first_layer_computes_no_input_gradient():
    r = run([3], [{"type": "linear", "out": 2, "name": "fc"}], phase="training")
    # batch 1: dW = 6 mul, no accumulation adds, db copies dy
    assert row(r, "fc").stages["backward"] == ops(mul=6)


def test_linear_over_tokens():
    r = run([5, 3], [{"type": "linear", "out": 2, "name": "fc"}])
    assert row(r, "fc").stages["forward"] == ops(mul=30, add=30)
    assert row(r, "fc").out_shape == (5, 2)


# --- convolution ------------------------------------------------------------------------------

def test_conv_geometry():
    # length 7, kernel 3, stride 2, dilation 2: windows {0,2,4}, {2,4,6}
    assert conv_geometry(7, 3, 2, 0, 2) == (2, 6, 4)
    # length 4, kernel 3, padding 1: windows {-1,0,1} {0,1,2} {1,2,3} {2,3,4}: 10 taps inside
    assert conv_geometry(4, 3, 1, 1, 1) == (4, 10, 4)
    assert adaptive_windows(5, 3) == [(0, 2), (1, 4), (3, 5)]


def test_conv2d_forward_and_backward():
    r = run([2, 4, 4], [{"type": "conv2d", "out": 3, "kernel": 3, "name": "c"}], phase="training",
            input_grad=True)
    c = row(r, "c")
    assert c.out_shape == (3, 2, 2) and c.params == 2 * 3 * 9 + 3
    # 4 positions x 3 channels: 18 mul, 17 adds + 1 bias add
    assert c.stages["forward"] == ops(mul=216, add=216)
    # dX: 216 contributions (mul); adds = contributions - distinct input pixels (2 x 16) = 184
    # dW: 54 weights x 4 positions: 216 mul, 54 x 3 adds; db: 3 x 3 adds
    assert c.stages["backward"] == ops(mul=432, add=184 + 162 + 9)
    assert c.macs == {"forward": 216, "backward": 432}


def test_conv2d_padding_counts_padded_taps_forward_only():
    r = run([2, 4, 4], [{"type": "conv2d", "out": 3, "kernel": 3, "padding": 1, "bias": False, "name": "c"}],
            phase="training", input_grad=True)
    c = row(r, "c")
    assert c.stages["forward"] == ops(mul=16 * 3 * 18, add=16 * 3 * 17)
    # dX as W^T dY: 16 positions x 18 column entries, each a 3-term sum (2 adds) = 576 adds,
    # col2im: 2 channels x (100 in-bounds taps - 16 pixels) = 168 adds
    assert c.stages["backward"]["add"] == 576 + 168 + 3 * 18 * 15


def test_depthwise_conv():
    r = run([4, 5, 5], [{"type": "conv2d", "kernel": 3, "depthwise": True, "name": "dw"}], phase="training",
            input_grad=True)
    dw = row(r, "dw")
    assert dw.out_shape == (4, 3, 3) and dw.params == 4 * 9 + 4
    assert dw.stages["forward"] == ops(mul=9 * 4 * 9, add=9 * 4 * 8 + 36)
    # dX: no cross-channel sum; col2im per channel: 81 taps onto 25 pixels
    assert dw.stages["backward"]["add"] == 4 * (81 - 25) + 4 * 9 * 8 + 4 * 8


def test_grouped_and_3d_and_1d_conv_shapes():
    r = run([4, 6], [{"type": "conv1d", "out": 6, "kernel": 3, "groups": 2, "stride": 2, "padding": 1,
                      "name": "c"}])
    c = row(r, "c")
    assert c.out_shape == (6, 3) and c.params == 4 // 2 * 6 * 3 + 6
    assert c.stages["forward"] == ops(mul=3 * 6 * 6, add=3 * 6 * 6)
    r = run([1, 4, 4, 4], [{"type": "conv3d", "out": 2, "kernel": 2, "name": "c"}])
    assert row(r, "c").out_shape == (2, 3, 3, 3) and r.params == 18
    assert row(r, "c").stages["forward"]["mul"] == 27 * 2 * 8


def test_conv_transpose():
    r = run([2, 3], [{"type": "conv_transpose1d", "out": 1, "kernel": 3, "stride": 2, "name": "t"}])
    t = row(r, "t")
    assert t.out_shape == (1, 7) and t.params == 2 * 1 * 3 + 1
    # 18 contributions onto 7 outputs: 18 mul, 11 adds, + 7 bias adds
    assert t.stages["forward"] == ops(mul=18, add=18)
    assert t.macs["forward"] == 18


# --- pooling ----------------------------------------------------------------------------------

def test_maxpool():
    r = run([1, 4, 4], [{"type": "maxpool2d", "kernel": 2, "name": "p"}], phase="training", input_grad=True)
    assert row(r, "p").stages["forward"] == ops(cmp=12)      # 4 windows x 3 compares
    assert row(r, "p").stages["backward"] == ops()            # no overlap: gradient routing is free
    r = run([1, 5, 5], [{"type": "maxpool2d", "kernel": 3, "stride": 2, "padding": 1, "name": "p"}],
            phase="training", input_grad=True)
    # windows per dim cover 2, 3, 2 pixels: 49 taps in 9 windows
    assert row(r, "p").stages["forward"] == ops(cmp=40)
    assert row(r, "p").stages["backward"] == ops(add=9)


def test_avgpool_and_adaptive_and_global():
    r = run([2, 4, 4], [{"type": "avgpool2d", "kernel": 2, "name": "p"}], phase="training", input_grad=True)
    assert row(r, "p").stages["forward"] == ops(add=24, div=8)
    assert row(r, "p").stages["backward"] == ops(div=8)
    r = run([1, 5], [{"type": "adaptive_avgpool1d", "out": 3, "name": "p"}], phase="training", input_grad=True)
    # windows of 2, 3, 2 (overlapping at 1 and 3)
    assert row(r, "p").stages["forward"] == ops(add=4, div=3)
    assert row(r, "p").stages["backward"] == ops(add=2, div=3)
    r = run([3, 2, 2], [{"type": "global_avgpool", "name": "p"}])
    assert row(r, "p").out_shape == (3,)
    assert row(r, "p").stages["forward"] == ops(add=9, div=3)
    r = run([3, 2, 2], [{"type": "global_maxpool", "name": "p"}])
    assert row(r, "p").stages["forward"] == ops(cmp=9)


# --- normalization ----------------------------------------------------------------------------

def test_layernorm():
    r = run([2, 4], [{"type": "layernorm", "name": "n"}], phase="training", input_grad=True)
    n = row(r, "n")
    assert n.params == 8
    # 2 rows of 4: mean 3 add + 1 div, 4 sub, var 4 mul + 3 add + 1 div, eps 1 add, rsqrt (fake:
    # 1 sqrt + 1 div), xhat 4 mul, gamma 4 mul, beta 4 add
    assert n.stages["forward"] == ops(add=2 * (3 + 3 + 1 + 4), sub=8, mul=24, div=6, sqrt=2)
    # g = dy*gamma 8 mul; c2 8 mul 6 add 2 div; c1 6 add; 3 mul + 2 sub per element;
    # dgamma 8 mul + 4 adds; dbeta 4 adds
    assert n.stages["backward"] == ops(mul=8 + 8 + 24 + 8, add=6 + 6 + 4 + 4, sub=16, div=2)


def test_rmsnorm_and_groupnorm():
    r = run([4], [{"type": "rmsnorm", "name": "n"}])
    assert r.params == 4
    assert row(r, "n").stages["forward"] == ops(mul=12, add=4, div=2, sqrt=1)
    r = run([4, 3], [{"type": "groupnorm", "groups": 2, "name": "n"}])
    assert r.params == 8
    # 2 groups of 6 elements
    assert row(r, "n").stages["forward"] == ops(add=2 * 5 + 2 * 5 + 2 + 12, sub=12, mul=36, div=6, sqrt=2)


def test_batchnorm_eval_and_training():
    r = run([2, 3], [{"type": "batchnorm", "name": "bn"}], batch=2)
    # folded per channel: 1 add, rsqrt, 2 mul, 1 sub; per element 1 mul + 1 add
    assert row(r, "bn").stages["forward"] == ops(add=14, mul=16, sub=2, sqrt=2, div=2)
    r = run([2, 3], [{"type": "batchnorm", "name": "bn"}], batch=2, phase="training")
    # 2 channels over 6 values; running statistics 5 mul + 2 add per channel
    assert row(r, "bn").stages["forward"] == ops(add=10 + 12 + 12 + 4, div=6, sub=12, mul=46, sqrt=2)
    assert r.params == 4


# --- embeddings, dropout, elementwise, shapes -------------------------------------------------

def test_embedding_and_positional():
    r = run([3], [{"type": "embedding", "vocab": 10, "dim": 4, "name": "e"},
                  {"type": "positional_embedding", "rows": 5, "name": "p"}], phase="training", batch=2)
    assert r.params == 40 + 20
    assert row(r, "e").stages["forward"] == ops() and row(r, "e").stages["backward"] == ops(add=24)
    assert row(r, "p").stages["forward"] == ops(add=24)
    assert row(r, "p").stages["backward"] == ops(add=12)        # sum over the batch of 2


def test_dropout_modes():
    layers = [{"type": "dropout", "p": 0.1, "name": "d"}]
    assert row(run([5], layers), "d").stages["forward"] == ops()
    r = run([5], layers, phase="training", input_grad=True)
    assert row(r, "d").stages["forward"] == ops(cmp=5, mul=5)
    assert row(r, "d").stages["backward"] == ops(mul=5)


def test_residual_add_and_fanout():
    layers = [{"type": "linear", "out": 4, "name": "a"},
              {"type": "relu", "name": "r"},
              {"type": "add", "inputs": ["r", "a"], "name": "s"}]
    r = run([4], layers, phase="training")
    assert row(r, "s").stages["forward"] == ops(add=4)
    assert row(r, "s").stages["backward"] == ops()
    # a feeds relu and add: its gradient is the sum of two, 4 adds, on top of dW (16 mul) and
    # (batch 1) no accumulation adds
    assert row(r, "a").stages["backward"] == ops(mul=16, add=4)
    r = run([4], [{"type": "identity", "name": "x"}, {"type": "add", "inputs": ["x", "x", "x"], "name": "s"}])
    assert row(r, "s").stages["forward"] == ops(add=8)


def test_zero_cost_layers():
    layers = [{"type": "linear", "out": 6, "name": "a"},
              {"type": "reshape", "shape": [2, 3]},
              {"type": "transpose", "perm": [1, 0]},
              {"type": "flatten"},
              {"type": "concat", "inputs": ["a", "flatten_3"], "axis": 0, "name": "c"},
              {"type": "select", "inputs": ["reshape_1"], "index": 1, "name": "s"}]
    r = run([6], layers, phase="training", batch=3)
    assert row(r, "c").out_shape == (12,) and row(r, "s").out_shape == (3,)
    for layer in r.layers[1:-1]:
        assert all(v == 0 for v in layer.stages["forward"].values()), layer.name
        # reshape_1 feeds transpose and select: its gradient is a sum of two (3 x 6 adds)
        assert layer.stages["backward"] == (ops(add=18) if layer.name == "reshape_1" else ops()), layer.name
    assert opcount.ZERO_COST == {"concat", "flatten", "reshape", "transpose", "identity", "select", "parameter"}


def test_matmul_both_operands_need_gradients():
    layers = [{"type": "linear", "out": 3, "name": "a"}, {"type": "transpose", "perm": [1, 0], "name": "t"},
              {"type": "matmul", "inputs": ["a", "t"], "name": "m"}]
    r = run([4, 3], layers, phase="training")
    m = row(r, "m")
    assert m.out_shape == (4, 4)
    assert m.stages["forward"] == ops(mul=48, add=32)
    # dA = dC B^T: 4x3 entries of 4 mul + 3 add; dB = A^T dC: 3x4 entries of 4 mul + 3 add
    assert m.stages["backward"] == ops(mul=96, add=72)
    assert m.macs == {"forward": 48, "backward": 96}
    # a feeds the matmul and the transpose: 12 adds for the fan-out
    assert row(r, "a").stages["backward"]["add"] == 3 * 3 * 3 + 3 * 3 + 12


def test_attention_inference():
    r = run([2, 4], [{"type": "attention", "heads": 2, "name": "att"}])
    a = row(r, "att")
    assert a.params == 4 * (16 + 4)
    # 4 projections: 32 mul + 32 add each; per head (2): QK^T 8 mul 4 add, scale 4 mul, softmax of
    # 2 rows of 2 (2 cmp, 4 sub, 4 exp = 12 mul, 2 add, 4 div), PV 8 mul 4 add
    assert a.stages["forward"] == ops(mul=128 + 2 * (8 + 4 + 12 + 8), add=128 + 2 * (4 + 2 + 4), sub=8, div=8,
                                      cmp=4)
    assert a.macs["forward"] == 128 + 2 * (8 + 8)


def test_attention_masks_rope_and_gqa():
    base = run([2, 4], [{"type": "attention", "heads": 2, "name": "att"}]).layers[0].stages["forward"]
    causal = run([2, 4], [{"type": "attention", "heads": 2, "causal": True, "name": "att"}]).layers[0]
    # causal: row 0 sees 1 key, row 1 sees 2, 3 entries per head instead of 4. Per head: QK^T 3x2 mul
    # 3x1 add, scale 3 mul, softmax over rows of 1 and 2 (1 cmp, 3 sub, 3 exp = 9 mul, 1 add, 3 div),
    # PV 3x2 mul and (3 - 2 rows)x2 add; the projections as dense (128 mul, 128 add)
    assert causal.stages["forward"] == ops(mul=128 + 2 * (6 + 3 + 9 + 6), add=128 + 2 * (3 + 1 + 2), sub=6, div=6,
                                           cmp=2)
    assert causal.macs["forward"] == 128 + 2 * (6 + 6)
    additive = run([2, 4], [{"type": "attention", "heads": 2, "mask": "additive", "name": "att"}]).layers[0]
    assert additive.stages["forward"]["add"] == base["add"] + 8
    rope = run([2, 4], [{"type": "attention", "heads": 2, "rope": True, "name": "att"}]).layers[0]
    assert rope.stages["forward"]["mul"] == base["mul"] + 2 * 16 and rope.stages["forward"]["add"] == base["add"] + 16
    gqa = run([2, 4], [{"type": "attention", "heads": 2, "kv_heads": 1, "bias": False, "name": "att"}]).layers[0]
    assert gqa.params == 2 * 16 + 2 * 8


def test_sdpa_layer_matches_attention_core():
    layers = [{"type": "reshape", "shape": [1, 2, 4], "name": "q"},
              {"type": "sdpa", "inputs": ["q", "q", "q"], "name": "s"}]
    r = run([2, 4], layers)
    s = row(r, "s")
    # 1 head, 2 queries, 2 keys, head dim 4: QK^T 16 mul 12 add, scale 4 mul, softmax 2 rows of 2
    # (2 cmp, 4 sub, 12 mul, 2 add, 4 div), PV 16 mul 8 add
    assert s.stages["forward"] == ops(mul=16 + 4 + 12 + 16, add=12 + 2 + 8, sub=4, div=4, cmp=2)


# --- activations ------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, forward, backward", [
    ({"type": "relu"}, ops(cmp=5), ops(cmp=5)),
    ({"type": "relu6"}, ops(cmp=10), ops(cmp=10)),
    ({"type": "leaky_relu", "slope": 0.2}, ops(cmp=5, mul=5), ops(cmp=5, mul=5)),
    ({"type": "sigmoid"}, ops(add=5, div=5), ops(mul=10, sub=5)),
    ({"type": "tanh"}, ops(sqrt=5), ops(mul=10)),
    ({"type": "gelu"}, ops(mul=35), ops(add=35)),
    ({"type": "gelu", "approximate": "tanh"}, ops(mul=55), ops(add=55)),
    ({"type": "silu"}, ops(div=10), ops(sub=10)),
])
def test_elementwise_activations(layer, forward, backward):
    r = run([5], [dict(layer, name="a")], phase="training", input_grad=True)
    assert row(r, "a").stages["forward"] == forward
    assert row(r, "a").stages["backward"] == backward


def test_softmax_and_log_softmax():
    r = run([2, 3], [{"type": "softmax", "name": "s"}], phase="training", input_grad=True)
    # 2 rows of 3: 2 cmp, 3 sub, 3 exp (9 mul), 2 add, 3 div per row
    assert row(r, "s").stages["forward"] == ops(cmp=4, sub=6, mul=18, add=4, div=6)
    assert row(r, "s").stages["backward"] == ops(mul=12, add=4, sub=6)
    r = run([2, 3], [{"type": "log_softmax", "name": "s"}], phase="training", input_grad=True)
    # per row 2 cmp, 3 sub, 3 exp, 2 add, 1 log (5 div), 3 sub
    assert row(r, "s").stages["forward"] == ops(cmp=4, sub=12, mul=18, add=4, div=10)
    assert row(r, "s").stages["backward"] == ops(mul=6 + 18, add=4, sub=6)
    r = run([3, 2], [{"type": "softmax", "axis": 0, "name": "s"}])
    assert row(r, "s").stages["forward"]["cmp"] == 2 * 2


# --- losses and optimizers --------------------------------------------------------------------

def test_losses():
    r = run([3], [{"type": "identity"}], phase="training", batch=2, loss="mse")
    loss = row(r, "loss")
    assert loss.stages["loss"] == ops(sub=6, mul=6, add=5, div=1)
    assert loss.stages["backward"] == ops(div=1, mul=6)
    r = run([4], [{"type": "identity"}], phase="training", batch=2, loss="cross_entropy")
    # per row: 3 cmp, 4 sub, 4 exp (12 mul), 3 add, 1 log (5 div), 1 add, 1 sub; mean: 1 add 1 div
    assert row(r, "loss").stages["loss"] == ops(cmp=6, sub=10, mul=24, add=9, div=11)
    assert row(r, "loss").stages["backward"] == ops(div=9, sub=2, mul=8)
    r = run([5, 2, 2], [{"type": "identity"}], phase="validation", loss="cross_entropy")
    # dense prediction: 4 pixels of 5 classes (channel dim), as torch's CrossEntropyLoss reads it
    assert row(r, "loss").stages["loss"]["cmp"] == 4 * 4
    r = run([3], [{"type": "identity"}], phase="validation", loss="bce")
    assert row(r, "loss").stages["loss"] == ops(sub=9, mul=6, add=5, div=31)
    assert row(r, "loss").stages["backward"] == ops()           # validation: no gradient


@pytest.mark.parametrize("optimizer, update", [
    ("sgd", ops(mul=8, sub=8)),
    ("momentum", ops(mul=16, add=8, sub=8)),
    ("adam", ops(mul=48 + 2, add=24, div=24, sqrt=8, sub=8 + 2)),
    ("adamw", ops(mul=56 + 2, add=24, div=24, sqrt=8, sub=16 + 2)),
])
def test_optimizers(optimizer, update):
    r = run([3], [{"type": "linear", "out": 2, "name": "fc"}], phase="training", batch=4, optimizer=optimizer)
    assert row(r, "fc").stages["update"] == update


# --- phases, incompleteness, arrays -----------------------------------------------------------

def test_phases_select_stages():
    layers = [{"type": "linear", "out": 2, "name": "fc"}]
    inference = run([3], layers)
    assert [layer.name for layer in inference.layers] == ["fc"]
    validation = run([3], layers, phase="validation")
    assert validation.layers[-1].name == "loss" and validation.layers[0].stages["backward"] == ops()
    training = run([3], layers, phase="training")
    assert training.totals["update"]["mul"] == 8
    assert training.macs == 6 + 6 and inference.macs == 6


def test_unknown_type_and_missing_recipe_are_reported():
    layers = [{"type": "linear", "out": 4},
              {"type": "mystery_op", "out_shape": [4], "params": 3, "name": "m"},
              {"type": "gelu", "name": "g"}]
    r = run([2], layers, profile=FakeProfile(drop=("gelu",)))
    assert not r.complete
    assert r.incomplete == [{"layer": "m", "type": "mystery_op", "reason": "unknown layer type"},
                            {"layer": "g", "type": "gelu", "reason": "profile has no recipe 'gelu'"}]
    assert r.params == 12 + 3
    assert [layer.name for layer in r.layers] == ["linear_0", "m", "g"]
    assert r.to_json()["complete"] is False
    assert r.incomplete_types == {"mystery_op": 1, "gelu": 1}
    assert r.to_json()["incomplete_types"] == {"mystery_op": 1, "gelu": 1}


def test_generic_elementwise_reduce_and_shape_op():
    layers = [{"type": "linear", "out": 4, "name": "a"},
              {"type": "elementwise", "op": "Div", "ops": {"div": 1}, "backward": {"div": 1}, "out_shape": [3, 4],
               "name": "d"},
              {"type": "elementwise", "op": "Erf", "ops": {"erf": 1, "add": 1}, "name": "e"},
              {"type": "reduce", "kind": "mean", "out_shape": [3, 1], "name": "m"},
              {"type": "shape_op", "op": "Slice", "out_shape": [2, 1], "name": "s"}]
    class WithErf(FakeProfile):
        RECIPES = dict(FakeProfile.RECIPES, erf=({"mul": 9}, {"mul": 1}))
    r = run([4], layers, phase="training", batch=2, profile=WithErf())
    # broadcast [4] -> [3, 4]: 24 div forward; backward 24 div + 16 adds to sum back to [4]
    assert row(r, "d").stages["forward"] == ops(div=24)
    assert row(r, "d").stages["backward"] == ops(div=24, add=16)
    assert row(r, "e").stages["forward"] == ops(mul=9 * 24, add=24)
    # e has no backward table: incomplete in training
    assert r.incomplete == [{"layer": "e", "type": "elementwise", "reason": "no backward formula for Erf"}]
    # mean over 4 of each of 3 rows: 3 x 3 adds + 3 div per sample
    assert row(r, "m").stages["forward"] == ops(add=18, div=6)
    assert row(r, "m").stages["backward"] == ops(div=6)
    assert row(r, "s").out_shape == (2, 1) and row(r, "s").stages["forward"] == ops()
    assert opcount.count_model(opcount.load_model({"input": [2], "layers": [{"type": "relu"}]}), "li2022").profile \
        == "li2022"


def test_reduce_over_the_whole_batch_reads_every_sample_once_per_batch():
    # a once output from a per-sample input: batch x 4 elements to 1 (7 cmp at batch 2), not 2 x 3
    layers = [{"type": "reduce", "kind": "max", "out_shape": [1], "once": True, "once_inputs": [False],
               "name": "peak"},
              {"type": "reduce", "kind": "sum", "out_shape": [1], "once": True, "name": "again", "inputs": ["peak"]}]
    r = run([4], layers, batch=2)
    assert row(r, "peak").stages["forward"] == ops(cmp=7)
    assert row(r, "again").stages["forward"] == ops()            # batch-free in and out: 1 element to 1
    with pytest.raises(opcount.ModelError, match=r"a batch-free input .* reduces to a batch-free output"):
        run([4], [{"type": "reduce", "kind": "max", "out_shape": [1], "once_inputs": [True]}])


def test_as_array_layout_and_overflow():
    r = run([3], [{"type": "linear", "out": 2}, {"type": "relu"}], phase="training", batch=2)
    array = r.as_array()
    assert array.dtype == np.int64 and array.shape == (3, 4, 6)
    assert array[0, 0].tolist() == [12, 0, 12, 0, 0, 0]
    assert array[1, 0, 5] == 4 and array[2, 1, 1] == 4            # relu cmp; mse sub
    assert array[0, 3].tolist() == [0, 8, 8, 0, 0, 0]             # sgd update
    big = run([2**31], [{"type": "linear", "out": 2**31, "bias": False, "name": "huge"}], batch=4)
    assert big.totals["forward"]["mul"] == 2**64                   # exact past int64
    with pytest.raises(OverflowError, match=r"^t: layer 'huge' forward add count \d+ does not fit int64$"):
        big.as_array()


def test_to_json_contract():
    r = run([3], [{"type": "linear", "out": 2, "name": "fc"}, {"type": "sigmoid"}], phase="validation")
    j = r.to_json()
    assert {"model", "phase", "batch", "params", "macs", "flops", "layers", "totals"} <= set(j)
    assert j["model"] == "t" and j["phase"] == "validation" and j["params"] == 8
    assert j["layers"][0]["name"] == "fc" and set(j["layers"][0]["stages"]) == {"forward", "loss"}
    assert set(j["totals"]) == {"forward", "loss", "all"}
    assert j["totals"]["all"]["mul"] == 6 + 2          # linear 6, mse squares 2


def test_count_model_argument_checks():
    model = opcount.load_model({"input": [3], "layers": [{"type": "relu"}]})
    with pytest.raises(ValueError, match=r"^phase must be one of inference, validation, training, not 'train'$"):
        opcount.count_model(model, FAKE, phase="train")
    with pytest.raises(ValueError, match=r"^batch must be a positive integer, not 0$"):
        opcount.count_model(model, FAKE, batch=0)
