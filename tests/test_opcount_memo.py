"""Memoized per-layer work (opcount._memo): repeated layers are inferred and counted once, and
that changes no count. The whole zoo is counted both ways and compared field by field; the
keys are checked to tell apart values that Python's ``==`` confuses. Nothing is timed."""
import dataclasses
import gc
import pickle

import pytest

import opcount
from opcount import _engine, _memo
from opcount._ir import _new_layer
from opcount._memo import Unfreezable, freeze


def _layer_rows(result):
    return [(layer.name, layer.type, layer.format, layer.out_shape, layer.params, layer.stages, layer.macs,
             layer.complete) for layer in result.layers]


def _count_zoo(profile, **options):
    out = {}
    for name in opcount.zoo_names():
        model = opcount.load_model(f"zoo:{name}")
        result = opcount.count_model(model, profile, **options)
        out[name] = (model.params, model.active_params, [layer.attrs for layer in model.layers],
                     result.totals, result.incomplete, _layer_rows(result))
    return out


@pytest.fixture(scope="module")
def zoo_training(generic):
    return _count_zoo(generic, phase="training", batch=3)


def test_the_zoo_counts_the_same_without_the_memos(generic, zoo_training, monkeypatch):
    monkeypatch.setattr(_memo, "ENABLED", False)
    reference = _count_zoo(generic, phase="training", batch=3)    # every layer worked out afresh
    assert reference.keys() == zoo_training.keys()
    for name in reference:
        assert zoo_training[name] == reference[name], name


@pytest.mark.parametrize("recompute", ["full", "selective"])
def test_recomputation_counts_the_same_without_the_memos(generic, monkeypatch, recompute):
    models = [opcount.load_model(f"zoo:{name}") for name in ("gpt2", "t5-small", "resnet18")]

    def rows():
        return [_layer_rows(opcount.count_model(m, generic, phase="training", recompute=recompute)) for m in models]
    memoized = rows()
    monkeypatch.setattr(_memo, "ENABLED", False)
    assert memoized == rows()


def test_repeated_blocks_share_a_signature_and_distinct_layers_do_not():
    model = opcount.load_model("zoo:gpt2")
    by_type = {}
    for layer in model.layers:
        by_type.setdefault((layer.type, layer.in_shapes, layer.out_shape), set()).add(layer.signature)
    assert all(s is not None for sigs in by_type.values() for s in sigs)
    attention = [layer for layer in model.layers if layer.type == "attention"]
    assert len(attention) == 12 and len({layer.signature for layer in attention}) == 1
    # a different sequence length is a different layer
    shorter = opcount.load_model("zoo:gpt2", seq=128)
    assert {l.signature for l in shorter.layers if l.type == "attention"} != {attention[0].signature}


def test_layers_set_apart_after_inference_are_counted_apart(generic, monkeypatch):
    # two identical linear layers but for ``frozen`` (and ``no_grad``): their costs differ
    spec = {"name": "twins", "input": [16], "layers": [
        {"type": "linear", "out": 16, "name": "a"}, {"type": "linear", "out": 16, "name": "b", "frozen": True},
        {"type": "linear", "out": 16, "name": "c"}, {"type": "linear", "out": 16, "name": "d", "no_grad": True},
        {"type": "linear", "out": 16, "name": "e"}]}

    def rows():
        result = opcount.count_model(opcount.load_model(spec), generic, phase="training", batch=2)
        return {layer.name: layer.stages for layer in result.layers}
    memoized = rows()
    assert memoized["a"] != memoized["b"]
    monkeypatch.setattr(_memo, "ENABLED", False)
    assert memoized == rows()


def test_freeze_keeps_apart_what_equality_confuses():
    confusable = [1, True, 1.0, "1", (1,), [1], {"a": 1}, {"a": True}, {"a": 1.0}, 0.0, -0.0,
                  (1, True), (1, 1), [[1]], [(1,)], {"a": [1]}, {"a": (1,)}, None, {"a": None}, {"b": 1}]
    keys = [freeze(v) for v in confusable]
    for i, a in enumerate(keys):
        for j, b in enumerate(keys):
            assert (a == b) == (i == j), (confusable[i], confusable[j])
    assert freeze({"x": 1, "y": (2, 3)}) == freeze({"x": 1, "y": (2, 3)})
    assert hash(freeze({"x": [1, {"k": 2.5}]})) == hash(freeze({"x": [1, {"k": 2.5}]}))
    # dict order is part of the key (a miss, never a wrong hit)
    assert freeze({"a": 1, "b": 2}) != freeze({"b": 2, "a": 1})


def test_the_fields_key_keeps_apart_what_equality_confuses():
    from opcount._memo import fields_key
    fields = [{"a": 1}, {"a": True}, {"a": 1.0}, {"a": 0.0}, {"a": -0.0}, {"a": "1"}, {"a": None}, {"b": 1},
              {"a": [1]}, {"a": (1,)}, {1: 1}, {"a": 1, "b": 2}]
    keys = [fields_key(f) for f in fields]
    for i, a in enumerate(keys):
        for j, b in enumerate(keys):
            assert (a == b) == (i == j), (fields[i], fields[j])
    assert fields_key({"out": 64, "bias": False}) == fields_key({"out": 64, "bias": False})


def test_freeze_refuses_other_types():
    class Int(int):
        pass
    for value in (Int(3), object(), {1, 2}, b"x", {"a": Int(1)}):
        with pytest.raises(Unfreezable):
            freeze(value)


def test_a_replaced_layer_loses_its_signature_and_a_reformatted_one_keeps_it():
    layer = opcount.load_model("zoo:resnet18").layers[0]
    assert layer.signature is not None
    assert dataclasses.replace(layer, params=0).signature is None
    again = opcount.with_format(opcount.load_model("zoo:resnet18"), "bf16").layers[0]
    assert again.format == "bf16" and again.signature == layer.signature


def test_built_layers_have_every_field_and_equal_plain_ones():
    model = opcount.load_model("zoo:lenet5")
    names = {f.name for f in dataclasses.fields(opcount.Layer)}
    for layer in model.layers:
        assert set(vars(layer)) == names
        plain = opcount.Layer(**{n: getattr(layer, n) for n in names if n != "signature"})
        assert plain == layer
    assert _new_layer(**{n: getattr(model.layers[0], n) for n in names}) == model.layers[0]
    copy = pickle.loads(pickle.dumps(model))
    assert [l.signature for l in copy.layers] == [l.signature for l in model.layers]


def test_a_registered_handler_is_called_for_every_layer(generic, monkeypatch):
    calls = []
    builtin = opcount.FORMULAS["relu"]

    def relu(layer, ctx):
        calls.append(layer.name)
        return builtin(layer, ctx)
    monkeypatch.setitem(opcount.FORMULAS, "relu", relu)
    model = opcount.load_model("zoo:resnet18")
    opcount.count_model(model, generic)
    assert calls == [layer.name for layer in model.layers if layer.type == "relu"]


def test_a_cost_with_something_missing_is_not_reused(monkeypatch):
    class NoGelu:
        name = "no-gelu"

        def has_recipe(self, name):
            return not name.startswith("gelu")

        def recipe_ops(self, name, direction="forward"):
            return {"mul": 1}
    model = opcount.load_model("zoo:gpt2")
    result = opcount.count_model(model, NoGelu())
    gelus = [layer.name for layer in model.layers if layer.type == "gelu"]
    assert len(gelus) == 12
    assert [item["layer"] for item in result.incomplete] == gelus      # each one reported


def test_counting_restores_the_garbage_collector_threshold(generic):
    from tosim import _pipeline
    before = gc.get_threshold()
    rows = _pipeline.count_all(["zoo:lenet5"], generic, "inference", 1, jobs=1)
    assert rows[0]["error"] is None and gc.get_threshold() == before
