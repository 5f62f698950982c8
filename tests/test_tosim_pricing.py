"""Pricing small jobs in Python (no numpy) and large ones with the kernel gives the same bits:
both multiply and add in the kernel's order. Real cost tables (bundled for the built-in
profiles); nothing is timed."""
import pytest

import hardware_profiles
import tosim
from tosim import _pipeline

SOURCES = ["zoo:gpt2", "zoo:resnet50", "zoo:densenet121", "zoo:lstm-lm", "zoo:t5-small", "zoo:li2022-cnn-6",
           "zoo:mixtral-8x7b"]


def _numbers(scores):
    out = []
    for r in scores:
        assert r.error is None, r.error
        out.append((r.name, r.tos, r.tos_by_stage, [(l.name, l.tos, l.tos_by_stage) for l in r.layers]))
    return out


@pytest.mark.parametrize("options", [
    {"phase": "inference"},
    {"phase": "training", "batch": 3, "format": "bf16", "master_format": "fp32"},   # two formats
])
def test_python_and_kernel_pricing_give_the_same_bits(monkeypatch, options):
    profile = hardware_profiles.load("cmos-generic")
    python = _numbers(tosim.score_many(SOURCES, profile, per_layer=True, **options))
    monkeypatch.setattr(_pipeline, "_PYTHON_MAX_LAYERS", 0)          # every job to the kernel
    kernel = _numbers(tosim.score_many(SOURCES, profile, per_layer=True, **options))
    assert python == kernel                                           # == on floats: the same bits


def test_python_pricing_is_counts_times_costs_in_the_kernels_order():
    profile = hardware_profiles.load("li2022")
    result = tosim.score("zoo:li2022-mlp-8-gelu", profile, phase="training", batch=5, per_layer=True)
    counts = result.count_result
    columns = tosim._costs.cost_columns(profile, ["fp32"])[0]
    stage_sums = [0.0] * 4
    for layer, row in zip(counts.layers, result.layers):
        for k, stage in enumerate(("forward", "loss", "backward", "update")):
            acc = 0.0
            for n, c in zip((layer.stages[stage][op] for op in ("add", "sub", "mul", "div", "sqrt", "cmp")), columns):
                acc += float(n) * c
            assert row.tos_by_stage[stage] == acc
            stage_sums[k] += acc
    assert list(result.tos_by_stage.values()) == stage_sums
    assert result.tos == ((stage_sums[0] + stage_sums[1]) + stage_sums[2]) + stage_sums[3]


def test_rows_past_int64_take_the_same_path_in_both(monkeypatch):
    profile = hardware_profiles.load("cmos-generic")
    options = dict(phase="training", batch=2 ** 24)
    python = [r.to_dict() for r in tosim.score_many(["zoo:gpt2", "zoo:gpt3-175b"], profile, **options)]
    monkeypatch.setattr(_pipeline, "_PYTHON_MAX_LAYERS", 0)
    kernel = [r.to_dict() for r in tosim.score_many(["zoo:gpt2", "zoo:gpt3-175b"], profile, **options)]
    assert python == kernel and python[1]["mul"] > 2 ** 63
