"""Layers that run in place (``inplace``: the output written over the input, no output allocated):
the spec field and its errors, the zoo's flags where torchvision has them, the PyTorch reader
(modules' ``inplace``, ``relu_``, ``F.relu(x, inplace=True)``, ``out += identity``), the device
energy model's LayerTable reading them, and counts that do not depend on them."""
import pytest

import opcount
from opcount import ModelError
from opcount._spec import spec_to_model
from opcount._zoo import _BUILDERS
from tosim import _pipeline
from tosim._device_model import layer_table


def _flags(model):
    return {layer.name: bool(layer.attrs.get("inplace")) for layer in model.layers}


def _counts(model, phase="training", batch=2):
    result = opcount.count_model(model, "cmos-generic", phase=phase, batch=batch)
    return [(layer.name, layer.type, layer.stages) for layer in result.layers], result.totals


# --- the spec field ------------------------------------------------------------------------------

def test_spec_field_sets_the_flag_and_leaves_the_counts(tmp_path):
    text = ("input: [3, 8, 8]\nlayers:\n- {type: conv2d, out: 4, kernel: 3, padding: 1, name: c}\n"
            "- {type: relu, inplace: true, name: r}\n- {type: dropout, p: 0.1, inplace: false, name: d}\n"
            "- {type: add, inputs: [d, c], inplace: true, name: a}\n- {type: sigmoid, name: s}\n")
    path = tmp_path / "m.yaml"
    path.write_text(text)
    model = opcount.load_model(str(path))
    assert _flags(model) == {"c": False, "r": True, "d": False, "a": True, "s": False}
    # false is the default: no attribute at all, the same layer as without the field
    assert "inplace" not in model.layer("d").attrs
    path.write_text(text.replace(", inplace: true", "").replace(", inplace: false", ""))
    plain = opcount.load_model(str(path))
    assert not any(_flags(plain).values())
    assert _counts(model) == _counts(plain)


@pytest.mark.parametrize("layer, line, message", [
    ("- {type: conv2d, out: 4, kernel: 3,\n   inplace: true}", 5,
     "layer 'conv2d_1' (conv2d): 'inplace' applies to the element-wise layers (add, dropout, elementwise, gelu, "
     "hardsigmoid, hardswish, leaky_relu, mul, relu, relu6, sigmoid, silu, stochastic_depth, tanh), not to a "
     "conv2d layer"),
    ("- {type: maxpool2d, kernel: 2, inplace: true}", 4, "layer 'maxpool2d_1' (maxpool2d): 'inplace' applies to"),
    ("- {type: relu, inplace: 1}", 4, "layer 'relu_1' (relu): 'inplace' must be true or false, not 1"),
    ("- {type: relu, inplace: 'yes'}", 4, "layer 'relu_1' (relu): 'inplace' must be true or false, not 'yes'"),
])
def test_spec_field_errors_name_the_file_line_and_field(tmp_path, layer, line, message):
    path = tmp_path / "m.yaml"
    path.write_text(f"input: [3, 8, 8]\nlayers:\n- {{type: conv2d, out: 4, kernel: 3}}\n{layer}\n")
    with pytest.raises(ModelError) as info:
        opcount.load_model(str(path))
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{path}: line {line}: {message}")


def test_spec_field_on_linear_through_the_cli_is_one_line(tmp_path, capsys):
    from tosim.cli import main
    path = tmp_path / "m.yaml"
    path.write_text("input: [4]\nlayers:\n- {type: linear, out: 3, inplace: true}\n")
    assert main(["count", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tosim: error: {path}: line 3: layer 'linear_0' (linear): 'inplace' applies to")
    assert "\n" not in err


def test_a_misspelt_field_gets_a_did_you_mean():
    with pytest.raises(ModelError, match=r"^<spec>: layer 'relu_0' \(relu\): unknown field 'inplase' "
                                         r"\(did you mean 'inplace'\?\)$"):
        spec_to_model({"input": [4], "layers": [{"type": "relu", "inplase": True}]})


# --- the zoo -------------------------------------------------------------------------------------

#: model: the layer types torchvision runs in place (every layer of those types)
TORCHVISION_INPLACE = {
    "alexnet": {"relu"}, "vgg11": {"relu"}, "vgg13": {"relu"}, "vgg16": {"relu"}, "vgg19": {"relu"},
    "resnet18": {"relu", "add"}, "resnet34": {"relu", "add"}, "resnet50": {"relu", "add"},
    "resnet101": {"relu", "add"}, "resnet152": {"relu", "add"}, "squeezenet1_0": {"relu"},
    "squeezenet1_1": {"relu"}, "googlenet": {"relu"}, "densenet121": {"relu"},
    "mobilenet_v2": {"relu6"}, "vit_b_16": set(), "lenet5": set(),
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_INPLACE))
def test_zoo_flags_are_torchvisions(name):
    model = opcount.load_zoo(name)
    types = TORCHVISION_INPLACE[name]
    assert {layer.name for layer in model.layers if layer.attrs.get("inplace")} == \
        {layer.name for layer in model.layers if layer.type in types}
    # dropout never (torchvision's Dropout(p) is not in place); MobileNetV2's x + conv(x) is not
    assert not any(layer.attrs.get("inplace") for layer in model.layers if layer.type == "dropout")
    if name == "mobilenet_v2":
        assert any(layer.type == "add" for layer in model.layers)


def test_no_other_zoo_model_has_an_inplace_layer():
    from opcount._zoo import _SEQUENCE_MODELS
    others = [n for n in opcount.zoo_names() if n not in TORCHVISION_INPLACE and not n.startswith("li2022-")]
    for name in others + ["li2022-mlp-4-sigmoid", "li2022-cnn-2"]:
        model = opcount.load_zoo(name, seq=8) if name in _SEQUENCE_MODELS else opcount.load_zoo(name)
        assert not any(_flags(model).values()), name


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "resnet18", "resnet50", "mobilenet_v2", "squeezenet1_1",
                                  "googlenet", "densenet121"])
def test_zoo_counts_do_not_depend_on_the_flags(name):
    spec = _BUILDERS[name]()
    plain = dict(spec, layers=[{k: v for k, v in layer.items() if k != "inplace"} for layer in spec["layers"]])
    flagged = opcount.load_zoo(name)
    stripped = spec_to_model(plain, source=f"zoo:{name}", default_name=name)
    assert any(_flags(flagged).values()) and not any(_flags(stripped).values())
    assert flagged.params == stripped.params
    assert _counts(flagged) == _counts(stripped)


def test_a_cached_zoo_row_equals_a_fresh_one(generic, cache_dir, monkeypatch):
    with monkeypatch.context() as m:
        m.setenv("TOSIM_COUNT_CACHE", "off")
        fresh = _pipeline.count_source("zoo:resnet18", generic, "training", 2, False)
    written = _pipeline.count_source("zoo:resnet18", generic, "training", 2, False)
    with monkeypatch.context() as m:
        m.setattr(opcount, "count_model", lambda *a, **k: pytest.fail("counted, not read from the cache"))
        read = _pipeline.count_source("zoo:resnet18", generic, "training", 2, False)
    assert fresh["error"] is None
    assert repr(fresh) == repr(written) == repr(read)


# --- the device energy model's table ---------------------------------------------------------------

def test_layer_table_marks_exactly_the_inplace_relus_of_vgg16():
    import hardware_profiles
    profile = hardware_profiles.load("getzner2023-cpu")
    out = _pipeline.count_source("zoo:vgg16", profile, "inference", 64, True, layer_features=True)
    table, labels = out["layer_table"]
    assert [t for (_n, t), flag in zip(labels, table.inplace) if flag] == ["relu"] * 15
    assert all(flag == (t == "relu") for (_n, t), flag in zip(labels, table.inplace))
    assert [layer["type"] for layer in out["layers"]].count("relu") == 15


def test_layer_table_in_training_keeps_dropout_and_add_flags():
    model = opcount.load_zoo("resnet18")
    result = opcount.count_model(model, "cmos-generic", phase="training", batch=2)
    table, labels = layer_table(model, result)
    flagged = {t for (_n, t), flag in zip(labels, table.inplace) if flag}
    assert flagged == {"relu", "add"}
    assert sum(table.inplace) == sum(1 for layer in model.layers if layer.type in ("relu", "add"))
    vgg = opcount.load_zoo("vgg11")
    table, labels = layer_table(vgg, opcount.count_model(vgg, "cmos-generic", phase="training", batch=2))
    assert "dropout" in [t for _n, t in labels]
    assert not any(flag for (_n, t), flag in zip(labels, table.inplace) if t == "dropout")


def test_onnx_layers_allocate_their_outputs(tmp_path):
    """ONNX has no in-place notion: its layers are priced as allocating their outputs."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Add", ["r", "x"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    model = opcount.load_model(str(path))
    assert {layer.type for layer in model.layers} >= {"relu"}
    assert not any(_flags(model).values())


# --- the PyTorch reader --------------------------------------------------------------------------

def _torch():
    return pytest.importorskip("torch")


def _block(torch, in_place):
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)
            self.act = nn.ReLU(inplace=in_place)
            self.drop = nn.Dropout(0.1, inplace=in_place)
            self.leaky = nn.LeakyReLU(0.2, inplace=in_place)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x):
            y = self.leaky(self.drop(self.act(self.bn(self.conv(x)))))    # BatchNorm then an in-place ReLU
            if in_place:
                y.relu_()
                y = F.relu(y, inplace=True)
                y += x
                y.mul_(x)
                y = torch.sigmoid_(y)
                y = F.dropout(y, 0.2, True, True)
            else:
                y = F.relu(y.relu())
                y = torch.sigmoid((y + x) * x)
                y = F.dropout(y, 0.2, True, False)
            return self.pool(y)
    return Block()


def test_torch_reader_reads_modules_and_in_place_calls():
    torch = _torch()
    flagged = opcount.load_torch(_block(torch, True), torch.randn(1, 3, 4, 4))
    plain = opcount.load_torch(_block(torch, False), torch.randn(1, 3, 4, 4))
    assert flagged.complete and plain.complete
    inplace = [(layer.type, layer.attrs.get("op")) for layer in flagged.layers if layer.attrs.get("inplace")]
    assert inplace == [("relu", None), ("dropout", None), ("leaky_relu", None), ("relu", None), ("relu", None),
                       ("elementwise", "add"), ("elementwise", "mul"), ("sigmoid", None), ("dropout", None)]
    assert not any(_flags(plain).values())
    # the same layers and the same counts, in place or not
    assert [layer.type for layer in flagged.layers] == [layer.type for layer in plain.layers]
    for phase in ("inference", "training"):
        a = opcount.count_model(flagged, "cmos-generic", phase=phase, batch=3)
        b = opcount.count_model(plain, "cmos-generic", phase=phase, batch=3)
        assert [layer.stages for layer in a.layers] == [layer.stages for layer in b.layers]
        assert a.totals == b.totals


def test_torch_reader_functional_in_place_forms():
    torch = _torch()
    F = torch.nn.functional

    class Calls(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x):
            y = self.fc(x)
            y = F.relu_(y)
            y = F.leaky_relu_(y, 0.1)
            y = F.leaky_relu(y, 0.1, True)
            y = F.hardswish(y, inplace=True)
            y = F.silu(y)                              # not in place
            y = torch.relu(y)                          # not in place
            return y.tanh_()
    model = opcount.load_torch(Calls(), torch.randn(2, 4))
    assert model.complete
    assert [(layer.type, bool(layer.attrs.get("inplace"))) for layer in model.layers] == [
        ("linear", False), ("relu", True), ("leaky_relu", True), ("leaky_relu", True), ("hardswish", True),
        ("silu", False), ("relu", False), ("tanh", True)]
    assert model.layers[2].attrs["slope"] == 0.1


class _Twin:
    """torchvision's ResNet-18 (``torchvision/models/resnet.py``: ReLU(inplace=True), ``out +=
    identity``), written here because torchvision is not a dependency."""

    @staticmethod
    def build(torch):
        nn = torch.nn

        class BasicBlock(nn.Module):
            def __init__(self, cin, planes, stride):
                super().__init__()
                self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(planes)
                self.relu = nn.ReLU(inplace=True)
                self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(planes)
                self.downsample = None
                if stride != 1 or cin != planes:
                    self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                                    nn.BatchNorm2d(planes))

            def forward(self, x):
                identity = x
                out = self.relu(self.bn1(self.conv1(x)))
                out = self.bn2(self.conv2(out))
                if self.downsample is not None:
                    identity = self.downsample(x)
                out += identity
                return self.relu(out)

        class ResNet18(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
                self.bn1 = nn.BatchNorm2d(64)
                self.relu = nn.ReLU(inplace=True)
                self.maxpool = nn.MaxPool2d(3, 2, 1)
                stages, cin = [], 64
                for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                    stages.append(nn.Sequential(BasicBlock(cin, planes, stride), BasicBlock(planes, planes, 1)))
                    cin = planes
                self.layer1, self.layer2, self.layer3, self.layer4 = stages
                self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
                self.fc = nn.Linear(512, 1000)

            def forward(self, x):
                x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
                x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
                return self.fc(torch.flatten(self.avgpool(x), 1))
        return ResNet18()


def test_torch_resnet18_twin_has_the_zoos_flags():
    torch = _torch()
    twin = opcount.load_torch(_Twin.build(torch), torch.randn(1, 3, 32, 32))
    zoo = opcount.load_zoo("resnet18")

    def flags(model):
        return [("add" if layer.type == "elementwise" else layer.type, bool(layer.attrs.get("inplace")))
                for layer in model.layers if layer.type in ("relu", "add", "elementwise")]
    assert twin.complete and twin.params == zoo.params
    assert flags(twin) == flags(zoo)
    assert len(flags(zoo)) == 17 + 8 and all(flag for _t, flag in flags(zoo))


def test_the_counting_page_example_reads(tmp_path):
    import os
    import re
    page = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "counting.md")
    with open(page, encoding="utf-8") as fh:
        text = fh.read()
    section = text[text.index("### Layers that run in place"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "block.yaml"
    path.write_text(block)
    model = opcount.load_model(str(path))
    assert _flags(model) == {"conv2d_0": False, "batchnorm_1": False, "act": True, "add_3": True}
