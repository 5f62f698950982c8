"""opcount under the li2022 profile: the paper's eq. 2 and eq. 3 exactly (section II-A)."""
import pytest

import opcount

PAPER_OPS = ("add", "sub", "mul", "div", "sqrt")      # the paper's five, root = sqrt


def forward_list(result):
    totals = result.totals["forward"]
    assert totals["cmp"] == 0
    return [totals[op] for op in PAPER_OPS]


@pytest.mark.parametrize("i, o", [(4, 8), (8, 1), (18, 18), (784, 10)])
def test_eq2_linear_with_sigmoid(li2022, i, o):
    model = opcount.load_model({"input": [i], "layers": [{"type": "linear", "out": o}, {"type": "sigmoid"}]})
    result = opcount.count_model(model, li2022)
    # C_f(l_Full-connection) = [(I+1)O, O, IO, O, O]
    assert forward_list(result) == [(i + 1) * o, o, i * o, o, o]


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("m, k, c_in, c_out", [(254, 3, 3, 32), (5, 2, 4, 6), (1, 7, 32, 32)])
def test_eq3_conv_with_gelu(li2022, approximate, m, k, c_in, c_out):
    model = opcount.load_model({"input": [c_in, m + k - 1, m + k - 1], "layers": [
        {"type": "conv2d", "out": c_out, "kernel": k}, {"type": "gelu", "approximate": approximate}]})
    result = opcount.count_model(model, li2022)
    n = m * m * c_out
    # n_add = m^2 c_out (1 + c_in k^2), n_sub = m^2 c_out, n_mul = m^2 c_out (2 + c_in k^2),
    # n_div = n_root = m^2 c_out
    assert forward_list(result) == [n * (1 + c_in * k * k), n, n * (2 + c_in * k * k), n, n]


def test_paper_mlp_set_scales_with_width(li2022):
    names = [name for name in opcount.zoo_names() if name.startswith("li2022-mlp-")]
    assert len(names) == 15 * 3
    # 4 -> W -> W -> W -> 1 with sigmoid: eq. 2 per layer, summed
    for width in (4, 11, 18):
        result = opcount.count_model(opcount.load_model(f"zoo:li2022-mlp-{width}-sigmoid"), li2022)
        w = width
        linears = [(4, w), (w, w), (w, w), (w, 1)]
        # eq. 2 for the three sigmoid layers, eq. 1 for the output layer
        assert forward_list(result) == [sum((i + 1) * o for i, o in linears[:3]) + w, 3 * w,
                                        sum(i * o for i, o in linears), 3 * w, 3 * w]


def test_paper_cnn_set(li2022):
    names = [name for name in opcount.zoo_names() if name.startswith("li2022-cnn-")]
    assert names and sorted(int(n.rsplit("-", 1)[1]) for n in names) == list(range(2, 11))
    model = opcount.load_model("zoo:li2022-cnn-7")
    kernels = [layer.attrs["kernel"] for layer in model.layers if layer.type == "conv2d"]
    assert kernels == [(4, 4)] * 7
    model = opcount.load_model("zoo:li2022-cnn-2")
    result = opcount.count_model(model, li2022)
    # two 3x3 convolutions of 32 channels with GELU on 256x256x3 (eq. 3 per layer)
    first = 254 * 254 * 32
    second = 252 * 252 * 32
    expected_sqrt = first + second
    assert result.totals["forward"]["sqrt"] == expected_sqrt
    conv_mul = first * (2 + 3 * 9) + second * (2 + 32 * 9)
    assert result.totals["forward"]["mul"] == conv_mul + 64           # + linear head 32 -> 2
