"""opcount MACs/FLOPs against torch.utils.flop_counter.FlopCounterMode (optional torch extra):
linear, conv, transposed conv, matmul and attention, forward and backward, on the same modules."""
import pytest

import opcount

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


class _NoRecipes:
    name = "none"

    def has_recipe(self, name):
        return True

    def recipe_ops(self, name, direction="forward"):
        return {}


def torch_flops(module_fn, x):
    """FLOPs of the forward and of the backward of ``module_fn(x)``, as FlopCounterMode counts."""
    with FlopCounterMode(display=False) as forward:
        y = module_fn(x)
    with FlopCounterMode(display=False) as backward:
        y.backward(torch.ones_like(y))
    return forward.get_total_flops(), backward.get_total_flops()


def ours(input_shape, layers, batch, input_grad):
    model = opcount.load_model({"input": list(input_shape), "layers": layers, "input_grad": input_grad})
    result = opcount.count_model(model, _NoRecipes(), phase="training", batch=batch)
    forward = sum(layer.flops["forward"] for layer in result.layers)
    backward = sum(layer.flops["backward"] for layer in result.layers)
    return forward, backward


CASES = [
    ("linear", lambda: torch.nn.Linear(5, 3), [5], [{"type": "linear", "out": 3}]),
    ("linear-tokens", lambda: torch.nn.Linear(5, 3, bias=False), [7, 5], [{"type": "linear", "out": 3, "bias": False}]),
    ("conv2d", lambda: torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), [3, 9, 9],
     [{"type": "conv2d", "out": 8, "kernel": 3, "stride": 2, "padding": 1}]),
    ("conv2d-groups-dilation", lambda: torch.nn.Conv2d(4, 6, (3, 2), groups=2, dilation=2, bias=False), [4, 10, 8],
     [{"type": "conv2d", "out": 6, "kernel": [3, 2], "groups": 2, "dilation": 2, "bias": False}]),
    ("depthwise", lambda: torch.nn.Conv2d(6, 6, 3, padding=1, groups=6), [6, 7, 7],
     [{"type": "conv2d", "kernel": 3, "padding": 1, "depthwise": True}]),
    ("conv1d", lambda: torch.nn.Conv1d(2, 5, 4, stride=3), [2, 20], [{"type": "conv1d", "out": 5, "kernel": 4, "stride": 3}]),
    ("conv3d", lambda: torch.nn.Conv3d(2, 3, 2), [2, 4, 5, 3], [{"type": "conv3d", "out": 3, "kernel": 2}]),
    ("conv_transpose2d", lambda: torch.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1), [4, 5, 5],
     [{"type": "conv_transpose2d", "out": 2, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1}]),
]


@pytest.mark.parametrize("input_grad", [False, True])
@pytest.mark.parametrize("name, make, shape, layers", CASES, ids=[c[0] for c in CASES])
def test_layer_flops_match_torch(name, make, shape, layers, input_grad):
    torch.manual_seed(0)
    batch = 3
    module = make()
    x = torch.randn(batch, *shape, requires_grad=input_grad)
    forward, backward = ours(shape, layers, batch, input_grad)
    torch_forward, torch_backward = torch_flops(module, x)
    assert forward == torch_forward
    # FlopCounterMode prices a grouped convolution's weight gradient as if it were ungrouped
    # (conv_backward_flop passes the transposed shapes without the groups), groups times the
    # true count; ours is the true count, which equals the forward product.
    groups = getattr(module, "groups", 1)
    assert backward + (groups - 1) * forward == torch_backward


@pytest.mark.parametrize("input_grad", [False, True])
def test_matmul_flops_match_torch(input_grad):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 3, requires_grad=True)
    layers = [{"type": "transpose", "perm": [1, 0], "name": "t"}, {"type": "matmul", "inputs": ["input", "t"]}]
    assert ours([4, 3], layers, 2, True) == torch_flops(lambda a: a @ a.transpose(-1, -2), x)
    # one operand a constant: only one gradient product
    w = torch.randn(3, 5)
    x = torch.randn(2, 4, 3, requires_grad=True)
    forward, backward = torch_flops(lambda a: torch.matmul(a, w.expand(2, 3, 5)), x)
    assert forward == 2 * 2 * 4 * 3 * 5 and backward == forward


def test_attention_flops_match_torch_multihead():
    torch.manual_seed(0)
    t, d, heads, batch = 6, 8, 2, 2
    mha = torch.nn.MultiheadAttention(d, heads, batch_first=True)
    x = torch.randn(batch, t, d, requires_grad=True)
    got = torch_flops(lambda a: mha(a, a, a, need_weights=True)[0], x)
    assert ours([t, d], [{"type": "attention", "heads": heads}], batch, True) == got


def test_small_model_end_to_end_matches_torch():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(6 * 2 * 2, 5))
    x = torch.randn(4, 3, 8, 8)
    layers = [{"type": "conv2d", "out": 4, "kernel": 3, "padding": 1}, {"type": "relu"}, {"type": "maxpool2d", "kernel": 2},
              {"type": "conv2d", "out": 6, "kernel": 3}, {"type": "relu"}, {"type": "flatten"},
              {"type": "linear", "out": 5}]
    assert ours([3, 8, 8], layers, 4, False) == torch_flops(net, x)
    params = sum(p.numel() for p in net.parameters())
    assert opcount.load_model({"input": [3, 8, 8], "layers": layers}).params == params
