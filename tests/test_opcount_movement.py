"""opcount.movement: accesses per level under the reuse models, bitwidth, sparsity, compute
energy, the profiles' memory sections (validation messages) and the AlexNet check (yang2017 V.A)."""
import dataclasses
import os

import pytest

import hardware_profiles as hp
import opcount
from opcount.movement import Densities, MemoryHierarchy, MemoryLevel, compute_energy, count_movement

HERE = os.path.dirname(__file__)
MEMORY_BAD = os.path.join(HERE, "fixtures", "profiles", "memory_bad")

LINEAR = {"name": "tiny", "input": [4], "layers": [{"type": "linear", "out": 3, "name": "fc"}]}


def hierarchy(reuse, rf_bytes=16):
    return MemoryHierarchy((MemoryLevel("rf", rf_bytes, 1.0, 4), MemoryLevel("dram", None, 100.0, 4)), reuse)


def moved(spec, hier, batch=2, densities=None, phase="inference"):
    model = opcount.load_model(spec)
    result = opcount.count_model(model, hp.load("cmos-generic"), phase=phase, batch=batch)
    return count_movement(result, model, hier, densities=densities)


def stage(mv, name="fc", s="forward"):
    layer = next(m for m in mv.layers if m.name == name)
    return layer.bytes[s]


def test_weight_stationary_hand_count():
    # rows 2, cols 3, K 4; the rf holds 4 fp32 weights = one filter: inputs stream 3 times
    got = stage(moved(LINEAR, hierarchy("weight_stationary")))
    # rf: 24 MACs x (weight, input, 2 psum) x 4 B + 6 bias reads, plus the fills from dram
    assert got["rf"] == {"weights": 24 * 4 + 6 * 4 + 60, "inputs": 24 * 4 + 96, "outputs": 2 * 24 * 4 + 24}
    # dram: weights once (12 + 3 bias), inputs 3 x 8, outputs written once
    assert got["dram"] == {"weights": 60, "inputs": 96, "outputs": 24}


def test_weight_stationary_partial_sums_spill():
    # an rf of 2 weights cuts each 4-weight filter in two: outputs written twice, read back once
    got = stage(moved(LINEAR, hierarchy("weight_stationary", rf_bytes=8)))
    assert got["dram"] == {"weights": 60, "inputs": 3 * 32, "outputs": 3 * 24}


def test_output_stationary_hand_count():
    # the rf holds 4 outputs = one row of 3: the weights stream once per row (2 times)
    got = stage(moved(LINEAR, hierarchy("output_stationary")))
    assert got["dram"] == {"weights": 2 * 48 + 12, "inputs": 32, "outputs": 24}


def test_everything_fits_streams_once_and_energy_is_bytes_times_price():
    mv = moved(LINEAR, hierarchy("weight_stationary", rf_bytes=1 << 20))
    got = stage(mv)
    assert got["dram"] == {"weights": 60, "inputs": 32, "outputs": 24}
    total_rf = sum(got["rf"].values())
    assert mv.movement_j == pytest.approx(total_rf * 1.0 + 116 * 100.0)
    assert mv.accesses(mv.layers[0], "dram") == 116 / 4


def test_bitwidth_halves_bytes():
    spec16 = dict(LINEAR, format="fp16")
    big = hierarchy("weight_stationary", rf_bytes=1 << 20)
    b32, b16 = stage(moved(LINEAR, big)), stage(moved(spec16, big))
    for level in ("rf", "dram"):
        for t in ("weights", "inputs", "outputs"):
            assert b16[level][t] == b32[level][t] / 2


def test_sparsity_skips_macs_and_compresses_transfers():
    big = hierarchy("weight_stationary", rf_bytes=1 << 20)
    mv = moved(LINEAR, big, densities=Densities(weights=0.5, inputs=0.5))
    layer = mv.layers[0]
    assert layer.effective_macs == 6.0
    got = layer.bytes["forward"]
    compressed = (1 + 0.5 * 32) / 8          # significance map: flag bit + non-zero values
    assert got["dram"] == {"weights": 12 * compressed + 12, "inputs": 8 * compressed, "outputs": 24}
    assert got["rf"]["inputs"] == 6 * 4 + 8 * compressed
    # per-layer densities override the model's
    per_layer = moved(LINEAR, big, densities=Densities(weights=0.5, layers={"fc": {"weights": 1.0}}))
    assert per_layer.layers[0].effective_macs == 24.0


def test_density_checks():
    with pytest.raises(ValueError, match=r"^weights density of model must be a number in \(0, 1\], not 0$"):
        Densities(weights=0)
    with pytest.raises(ValueError, match=r"^density key of layer 'fc' must be 'weights' or 'inputs', not 'w'$"):
        Densities(layers={"fc": {"w": 0.5}})
    with pytest.raises(ValueError, match=r"^densities name layer 'fc9', which 'tiny' does not have$"):
        moved(LINEAR, hierarchy("weight_stationary"), densities=Densities(layers={"fc9": {"inputs": 0.5}}))


def test_training_stages():
    mv = moved(LINEAR, hierarchy("weight_stationary"), phase="training")
    layer = mv.layers[0]
    # the first layer computes no input gradient: one backward product (the weight gradient)
    assert layer.bytes["backward"] == layer.bytes["forward"]
    assert layer.bytes["update"]["dram"]["weights"] == 3 * 15 * 4


def test_compute_energy_rules():
    ops = {"add": 10, "sub": 2, "mul": 8, "div": 1, "sqrt": 0, "cmp": 3}
    horowitz = hp.load("horowitz45").memory["compute"]
    want = (10 + 2 + 3) * 0.9e-12 + (8 + 1) * 3.7e-12
    assert compute_energy(ops, 8, 8.0, "fp32", horowitz) == pytest.approx(want)
    # bf16 borrows fp16 (same width); fp64 scales fp32 by 2 (add) and 4 (mul)
    assert compute_energy({"add": 1}, 0, 0.0, "bf16", horowitz) == pytest.approx(0.4e-12)
    assert compute_energy({"add": 1, "mul": 1}, 0, 0.0, "fp64", horowitz) == pytest.approx(1.8e-12 + 14.8e-12)
    # yang2017: a MAC unit per effective MAC, the leftover ops one unit each; skipped MACs free
    yang = hp.load("yang2017").memory["compute"]
    assert compute_energy({"mul": 8, "add": 10}, 8, 2.0, "fp16", yang) == pytest.approx((2 + 2) * 1e-12)
    assert compute_energy(ops, 8, 8.0, "fp32", {}) == 0.0


def test_profile_without_memory_is_refused():
    model = opcount.load_model(LINEAR)
    result = opcount.count_model(model, hp.load("cmos-generic"))
    with pytest.raises(ValueError, match=r"^profile 'cmos-generic' has no memory section$"):
        count_movement(result, model, hp.load("cmos-generic"))


def test_builtin_memory_profiles():
    h = MemoryHierarchy.from_profile(hp.load("horowitz45"))
    assert h.names == ("rf", "local_buffer", "global_buffer", "dram")
    assert [lv.energy_per_byte_j for lv in h.levels] == pytest.approx([1.25e-12, 2.5e-12, 12.5e-12, 250e-12])
    y = MemoryHierarchy.from_profile(hp.load("yang2017"))
    # normalized to a 16-bit MAC of 1 pJ: RF 1, array 2, buffer 6, DRAM 200 per 16-bit access
    assert [lv.energy_per_byte_j * 2 for lv in y.levels] == pytest.approx([1e-12, 2e-12, 6e-12, 200e-12])
    assert MemoryHierarchy.from_profile(hp.load("cmos-generic")) is None


MEMORY_CASES = {
    "unknown_reuse.yaml": "unknown_reuse.yaml:3: memory.reuse: unknown reuse model 'row_stationery' (did you mean "
                          "'weight_stationary'?); known: weight_stationary, output_stationary",
    "missing_capacity.yaml": "missing_capacity.yaml:4: memory.levels[0]: missing key 'capacity_bytes' (every level "
                             "but the outermost needs one)",
    "shrinking_capacity.yaml": "shrinking_capacity.yaml:5: memory.levels[1].capacity_bytes: capacity must be larger "
                               "than the level inside it (rf, 1024 bytes), not 512",
    "both_energies.yaml": "both_energies.yaml:4: memory.levels[0]: give energy_per_access_j or energy_per_byte_j, "
                          "not both",
    "negative_energy.yaml": "negative_energy.yaml:5: memory.levels[0].energy_per_byte_j: energy must be a "
                            "non-negative number of joules, not -1e-10",
    "compute_op.yaml": "compute_op.yaml:7: memory.compute.op_energy_j.fp32.fma: unknown op 'fma'",
    "no_levels.yaml": "no_levels.yaml:2: memory: missing key 'levels' (a memory section describes its hierarchy)",
}


@pytest.mark.parametrize("fixture", sorted(MEMORY_CASES))
def test_memory_section_messages(fixture, monkeypatch):
    monkeypatch.chdir(MEMORY_BAD)
    with pytest.raises(hp.ProfileError) as info:
        hp.load_file(fixture)
    assert str(info.value) == MEMORY_CASES[fixture]


def test_every_memory_fixture_has_a_case():
    assert sorted(os.listdir(MEMORY_BAD)) == sorted(MEMORY_CASES)


def alexnet_split(batch):
    model = opcount.load_model("zoo:alexnet")
    model = dataclasses.replace(model, format="fp16",
                                layers=[dataclasses.replace(layer, format="fp16") for layer in model.layers])
    profile = hp.load("yang2017")
    mv = count_movement(opcount.count_model(model, profile, batch=batch), model, profile)
    per_byte = {lv.name: lv.energy_per_byte_j for lv in mv.hierarchy.levels}

    def energy(layers):
        return sum(m.compute_j + m.movement_j for m in layers)

    conv = [m for m in mv.layers if m.type == "conv2d"]
    fc = [m for m in mv.layers if m.type == "linear"]
    fc_weights = sum(m.bytes[s][lv]["weights"] * per_byte[lv] for m in fc for s in m.bytes for lv in per_byte)
    total = mv.compute_j + mv.movement_j
    return energy(conv) / total, energy(fc) / total, fc_weights / energy(fc)


def test_alexnet_fc_energy_is_mostly_weight_movement():
    """yang2017 V.A: FC layers' energy is dominated by weights (no convolutional reuse). Under
    yang2017's costs and the weight-stationary model, AlexNet fp16: FC weights are 84% of the FC
    layers' energy at batch 1. Conv layers take 24% of the total at batch 1 (the FC weights'
    DRAM reads dominate), 58% at batch 16, where the weights are shared by more samples."""
    conv1, fc1, fc_weights1 = alexnet_split(1)
    assert fc_weights1 > 0.8
    conv16, fc16, _ = alexnet_split(16)
    assert conv16 > 0.5 > conv1
    assert conv1 + fc1 > 0.99 and conv16 + fc16 > 0.99
