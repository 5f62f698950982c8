"""The device energy model (calibrate._energy): known coefficients recovered from synthetic runs,
non-negativity, the transistor-price prior with few rows, the profile form."""
import math

import numpy as np
import pytest

import calibrate
from calibrate import EnergyModel, LayerTable, fit_energy_model

TOS = {("fp32", "add"): 1000.0, ("fp32", "mul"): 8000.0, ("fp32", "cmp"): 500.0}
KEYS = sorted(TOS)


def _table(rng, n, types=("conv2d", "relu", "maxpool2d")):
    """n single-layer runs: ops per key, bytes per role, one call, a type each."""
    kinds = [types[i % len(types)] for i in range(n)]
    ops = np.zeros((n, len(KEYS)))
    for i, kind in enumerate(kinds):
        size = 10.0 ** rng.uniform(4, 8)
        if kind == "conv2d":
            ops[i, KEYS.index(("fp32", "mul"))] = size
            ops[i, KEYS.index(("fp32", "add"))] = size
        else:
            ops[i, KEYS.index(("fp32", "cmp"))] = size * rng.uniform(0.5, 9)
    data = 10.0 ** rng.uniform(3, 9, size=(n, 3))
    return LayerTable(run=np.arange(n), repeat=np.ones(n), op_keys=KEYS, ops=ops, bytes=data, calls=np.ones(n),
                      n_runs=n, types=kinds)


def _truth():
    return EnergyModel(terms=("ops", "memory", "calls"),
                       op_j={"fp32": {"add": 2e-12, "mul": 9e-12, "cmp": 4e-11}},
                       byte_j={"inputs": 3e-11, "outputs": 5e-11, "weights": 1e-11}, call_j=2e-3)


def test_known_coefficients_are_recovered_without_prior():
    rng = np.random.default_rng(1)
    table = _table(rng, 200)
    truth = _truth()
    y, _ = truth.predict_runs(table)
    model, info = fit_energy_model(table, y, terms=truth.terms, tos_per_op=TOS, prior_strength=0.0,
                                   spill_search=False)
    # add and mul always appear together (conv), so only their sum per MAC is identified
    assert model.op_j["fp32"]["add"] + model.op_j["fp32"]["mul"] == pytest.approx(11e-12, rel=1e-6)
    assert model.op_j["fp32"]["cmp"] == pytest.approx(4e-11, rel=1e-6)
    for role, value in truth.byte_j.items():
        assert model.byte_j[role] == pytest.approx(value, rel=1e-6)
    assert model.call_j == pytest.approx(2e-3, rel=1e-6)
    pred, _ = model.predict_runs(table)
    assert np.max(np.abs(pred / y - 1)) < 1e-8
    assert info["loss"] == "relative"


def test_static_term_per_layer_type_and_balance_are_recovered():
    rng = np.random.default_rng(2)
    table = _table(rng, 150)
    truth = EnergyModel(terms=("static",), static_j_per_op={"conv2d": 1e-9, "relu": 5e-8, "maxpool2d": 2e-7},
                        peak_ops_per_s=1e10, bandwidth_bytes_per_s=1e9)   # balance 10 ops per byte
    y, _ = truth.predict_runs(table)
    model, info = fit_energy_model(table, y, terms=("static",), static_w=20.0, prior_strength=0.0)
    assert info["balance_ops_per_byte"] == pytest.approx(10.0, rel=0.02)
    for kind, value in truth.static_j_per_op.items():
        assert model.static_j_per_op[kind] == pytest.approx(value, rel=0.02)
    # the fastest kernel runs at the peak: static_w / peak = its J per op
    assert model.static_w == 20.0
    assert model.peak_ops_per_s == pytest.approx(20.0 / 1e-9, rel=0.02)
    assert model.efficiency()["conv2d"] == pytest.approx(1.0)
    assert model.efficiency()["maxpool2d"] == pytest.approx(1e-9 / 2e-7, rel=0.03)
    # time: static joules / static power
    t = model.layer_time(table)
    assert np.allclose(t * 20.0, model.layer_terms(table)["static"], rtol=1e-12)


def test_coefficients_stay_non_negative_where_the_truth_is_negative():
    rng = np.random.default_rng(3)
    table = _table(rng, 120)
    # energies that fall with the bytes moved: the best fit wants a negative per-byte price
    y = table.per_run(table.ops @ np.asarray([1e-12, 1e-11, 1e-11])) * 2 + 1.0 - 1e-10 * table.bytes[:, 0]
    y = np.maximum(y, 0.5)
    model, _ = fit_energy_model(table, y, terms=("ops", "memory", "calls"), tos_per_op=TOS, prior_strength=0.0,
                                spill_search=False)
    values = [v for ops in model.op_j.values() for v in ops.values()] + list(model.byte_j.values()) + [model.call_j]
    assert min(values) >= 0.0
    assert model.byte_j["inputs"] == 0.0


def test_few_rows_stay_proportional_to_transistors():
    """Two conv runs cannot tell add from mul (nor cmp at all): the prior keeps every op at the
    same joules per transistor, i.e. the model is a TOs model."""
    rng = np.random.default_rng(4)
    table = _table(rng, 2, types=("conv2d",))
    y = np.asarray([1.0, 3.0])
    model, info = fit_energy_model(table, y, terms=("ops",), tos_per_op=TOS)
    per_to = {op: model.op_j["fp32"][op] / TOS[("fp32", op)] for op in ("add", "mul", "cmp")}
    assert per_to["add"] == pytest.approx(per_to["mul"], rel=1e-3)
    assert per_to["cmp"] == pytest.approx(per_to["mul"], rel=1e-3)
    assert per_to["mul"] == pytest.approx(info["tos_j_per_to"], rel=0.05)


def test_without_prior_few_rows_leave_ratios_arbitrary():
    rng = np.random.default_rng(4)
    table = _table(rng, 2, types=("conv2d",))
    model, _ = fit_energy_model(table, np.asarray([1.0, 3.0]), terms=("ops",), tos_per_op=TOS, prior_strength=0.0)
    assert model.op_j["fp32"]["cmp"] == 0.0          # never seen: nothing pulls it up


def test_rich_data_overrules_the_prior():
    rng = np.random.default_rng(5)
    table = _table(rng, 300)
    truth = EnergyModel(terms=("ops",), op_j={"fp32": {"add": 1e-12, "mul": 8e-12, "cmp": 4e-10}})
    y, _ = truth.predict_runs(table)
    model, _ = fit_energy_model(table, y, terms=("ops",), tos_per_op=TOS)
    # cmp costs 160x its transistor share here, and 300 rows say so
    assert model.op_j["fp32"]["cmp"] == pytest.approx(4e-10, rel=0.02)


def test_spill_level_is_found():
    rng = np.random.default_rng(6)
    table = _table(rng, 200)
    truth = EnergyModel(terms=("memory",), byte_j={"inputs": 1e-11, "outputs": 1e-11, "weights": 1e-11},
                        capacity_bytes=1e8, spill_j_per_byte=3e-11)
    y, _ = truth.predict_runs(table)
    model, _ = fit_energy_model(table, y, terms=("memory",), prior_strength=0.0)
    assert model.capacity_bytes == pytest.approx(1e8, rel=0.1)
    pred, _ = model.predict_runs(table)
    assert np.median(np.abs(pred / y - 1)) < 0.01
    given, info = fit_energy_model(table, y, terms=("memory",), prior_strength=0.0, capacity_bytes=1e8)
    assert given.capacity_bytes == 1e8 and info["searched"] == 0
    assert given.spill_j_per_byte == pytest.approx(3e-11, rel=1e-6)


def test_memory_prices_per_layer_type_are_recovered():
    """Kernels attain different bandwidths: each type's byte prices are its own; a type never seen
    gets the median price of each role over the kernels that move such bytes."""
    rng = np.random.default_rng(10)
    table = _table(rng, 240)
    truth = EnergyModel(terms=("memory",), byte_j_by_type={
        "conv2d": {"inputs": 1e-11, "outputs": 2e-11, "weights": 1e-12},
        "relu": {"inputs": 5e-11, "outputs": 6e-11, "weights": 0.0},
        "maxpool2d": {"inputs": 3e-10, "outputs": 4e-11, "weights": 0.0}})
    y, _ = truth.predict_runs(table)
    model, _ = fit_energy_model(table, y, terms=("memory",), prior_strength=0.0, spill_search=False)
    for kind, prices in truth.byte_j_by_type.items():
        for role, value in prices.items():
            assert model.byte_j_by_type[kind][role] == pytest.approx(value, rel=1e-6, abs=1e-18)
    # every type has random weight bytes in this synthetic table, so all three count for weights
    assert model.byte_j == {"inputs": pytest.approx(5e-11), "outputs": pytest.approx(4e-11),
                            "weights": pytest.approx(0.0, abs=1e-18)}
    shared, _ = fit_energy_model(table, y, terms=("memory",), prior_strength=0.0, spill_search=False,
                                 memory_by_type=False)
    assert shared.byte_j_by_type == {}
    assert np.median(np.abs(shared.predict_runs(table)[0] / y - 1)) > 0.05   # one price set cannot fit


def test_profile_form_round_trip():
    model = _truth()
    back = EnergyModel.from_dict(model.to_dict())
    table = _table(np.random.default_rng(7), 10)
    assert np.allclose(back.predict_runs(table)[0], model.predict_runs(table)[0], rtol=0, atol=0)
    assert model.to_dict()["version"] == calibrate.ENERGY_MODEL_VERSION


def test_unpriced_op_is_named():
    model = EnergyModel(terms=("ops",), op_j={"fp32": {"add": 1e-12}})
    table = _table(np.random.default_rng(8), 3)
    with pytest.raises(ValueError, match="prices no fp32 cmp"):
        model.predict_runs(table)


@pytest.mark.parametrize("kwargs, message", [
    ({"terms": ("ops", "heat")}, "unknown energy term 'heat'"),
    ({"loss": "squared"}, "loss must be one of relative, absolute"),
    ({"prior_strength": -1.0}, "prior strength must be a non-negative number"),
    ({"static_w": 0.0}, "static_w must be a positive number"),
    ({"tos_per_op": None}, "needs the transistors of each op"),
])
def test_bad_arguments(kwargs, message):
    table = _table(np.random.default_rng(9), 6)
    args = {"terms": ("ops",), "tos_per_op": TOS, **kwargs}
    with pytest.raises(ValueError, match=message):
        fit_energy_model(table, np.ones(6), **args)


def test_relative_loss_needs_positive_energies():
    table = _table(np.random.default_rng(9), 4)
    with pytest.raises(ValueError, match="positive measured energies"):
        fit_energy_model(table, np.asarray([1.0, 0.0, 1.0, 1.0]), terms=("calls",))
    model, info = fit_energy_model(table, np.asarray([1.0, 0.0, 1.0, 1.0]), terms=("calls",), loss="absolute")
    assert model.call_j == pytest.approx(0.75, rel=1e-3) and info["loss"] == "absolute"   # shrunk a little


def test_repeats_and_runs_sum_layer_calls():
    table = LayerTable(run=[0, 0, 1], repeat=[2, 3, 1], op_keys=[("fp32", "add")], ops=[[10], [20], [5]],
                       bytes=np.zeros((3, 3)), calls=[1, 1, 1], n_runs=2)
    model = EnergyModel(terms=("ops", "calls"), op_j={"fp32": {"add": 1.0}}, call_j=100.0)
    total, terms = model.predict_runs(table)
    assert total.tolist() == [2 * 10 + 3 * 20 + 500, 5 + 100]
    assert terms["calls"].tolist() == [500, 100]
    assert math.isclose(sum(v[0] for v in terms.values()), total[0])


def _windowed_table(rng, n):
    """Conv-like runs with random output channels and windows, and pooling-like runs."""
    table = _table(rng, n, types=("conv2d", "maxpool2d"))
    conv = np.asarray([k == "conv2d" for k in table.types])
    table.channels = np.where(conv, rng.integers(1, 64, n), 0).astype(float)
    kernel, stride = rng.integers(1, 8, n), rng.integers(1, 5, n)
    table.window = np.minimum(stride, kernel) / kernel
    table.rows = table.ops.sum(axis=1) / kernel
    return table


def test_channel_block_pads_blocked_ops_only():
    table = LayerTable(run=[0, 1, 2], repeat=[1, 1, 1], op_keys=[("fp32", "add")], ops=[[100], [100], [100]],
                       bytes=np.zeros((3, 3)), calls=[1, 1, 1], n_runs=3, types=["conv2d"] * 3,
                       channels=[3, 16, 0], window=[0, 0, 0])
    model = EnergyModel(terms=("static",), static_j_per_op={"conv2d": 1.0}, channel_block=16)
    # 3 channels run as 16 (x16/3); 16 are a whole block; 0 = not a blocked kernel
    assert model.predict_runs(table)[0] == pytest.approx([100 * 16 / 3, 100, 100])
    assert EnergyModel.from_dict(model.to_dict()).channel_block == 16
    assert "channel_block" not in EnergyModel(terms=("static",)).to_dict()


def test_window_term_and_channel_block_are_recovered():
    rng = np.random.default_rng(11)
    table = _windowed_table(rng, 200)
    truth = EnergyModel(terms=("static",), static_j_per_op={"conv2d": 1e-9, "maxpool2d": 5e-8},
                        window_j_per_op={"conv2d": 4e-10, "maxpool2d": 3e-8}, row_j={"maxpool2d": 2e-7},
                        channel_block=16,
                        peak_ops_per_s=1e9, bandwidth_bytes_per_s=1e12)
    y, _ = truth.predict_runs(table)
    model, _ = fit_energy_model(table, y, terms=("static",), static_w=10.0, prior_strength=0.0,
                                peak_ops_per_s=1e9, bandwidth_bytes_per_s=1e12, channel_block=16)
    for kind in ("conv2d", "maxpool2d"):
        assert model.static_j_per_op[kind] == pytest.approx(truth.static_j_per_op[kind], rel=1e-6)
        assert model.window_j_per_op[kind] == pytest.approx(truth.window_j_per_op[kind], rel=1e-6)
    assert model.row_j["maxpool2d"] == pytest.approx(2e-7, rel=1e-6)
    assert model.row_j["conv2d"] == pytest.approx(0.0, abs=1e-15)
    assert EnergyModel.from_dict(model.to_dict()).row_j == model.row_j
    assert model.channel_block == 16
    # time includes the window ops: static joules / static power
    assert np.allclose(model.layer_time(table) * 10.0, model.layer_terms(table)["static"], rtol=1e-12)
    # without the window term (or without padding) the same rows are fitted worse
    off, _ = fit_energy_model(table, y, terms=("static",), static_w=10.0, prior_strength=0.0,
                              peak_ops_per_s=1e9, bandwidth_bytes_per_s=1e12, channel_block=16, window=False)
    assert off.window_j_per_op == {} and off.row_j == {}
    assert np.median(np.abs(off.predict_runs(table)[0] / y - 1)) > 0.02
    unpadded, _ = fit_energy_model(table, y, terms=("static",), static_w=10.0, prior_strength=0.0,
                                   peak_ops_per_s=1e9, bandwidth_bytes_per_s=1e12)
    assert unpadded.channel_block == 1
    conv = np.asarray([k == "conv2d" for k in table.types])
    assert np.median(np.abs(unpadded.predict_runs(table)[0][conv] / y[conv] - 1)) > 0.02


def test_window_and_channels_survive_subset_and_concat():
    table = _windowed_table(np.random.default_rng(12), 6)
    sub = table.subset([4, 1])
    for new, old in ((0, 4), (1, 1)):
        assert sub.channels[sub.run == new].tolist() == [table.channels[old]]
        assert sub.window[sub.run == new].tolist() == [table.window[old]]
        assert sub.rows[sub.run == new].tolist() == [table.rows[old]]
    both = LayerTable.concat([table, sub])
    assert both.channels.tolist() == table.channels.tolist() + sub.channels.tolist()
    assert both.window.tolist() == table.window.tolist() + sub.window.tolist()
    assert both.rows.tolist() == table.rows.tolist() + sub.rows.tolist()
    with pytest.raises(ValueError, match="window shares"):
        LayerTable(run=[0], repeat=[1], op_keys=[], ops=np.zeros((1, 0)), bytes=np.zeros((1, 3)), calls=[1],
                   n_runs=1, window=[1.5])
    with pytest.raises(ValueError, match="channel block"):
        fit_energy_model(table, np.ones(6), terms=("static",), channel_block=0)


def test_ops_no_run_counts_get_the_prior_price():
    """An op of a fitted format that no run counts (a batch norm's sqrt after a fit on convs) is
    priced by the prior alone: its transistors x the prior's common joules per transistor."""
    rng = np.random.default_rng(13)
    full = _table(rng, 2, types=("conv2d",))
    keep = [KEYS.index(("fp32", "add")), KEYS.index(("fp32", "mul"))]
    table = LayerTable(run=full.run, repeat=full.repeat, op_keys=[KEYS[j] for j in keep], ops=full.ops[:, keep],
                       bytes=full.bytes, calls=full.calls, n_runs=2, types=full.types)
    model, info = fit_energy_model(table, np.asarray([1.0, 3.0]), terms=("ops",), tos_per_op=TOS)
    per_to = {op: model.op_j["fp32"][op] / TOS[("fp32", op)] for op in ("add", "mul", "cmp")}
    assert per_to["cmp"] > 0
    assert per_to["cmp"] == pytest.approx(per_to["mul"], rel=1e-3)
    # an op it has no transistor count for stays unpriced (scoring it names it)
    assert "sqrt" not in model.op_j["fp32"]


def test_valid_taps_and_input_channel_padding_price_the_ops_a_kernel_runs():
    """Static ops are the counted ops x the valid-tap share, output channels padded to the block,
    input channels padded too from one block on (fewer: unpadded, a kernel of their own)."""
    table = LayerTable(run=[0, 1, 2, 3], repeat=[1] * 4, op_keys=[("fp32", "add")], ops=[[100]] * 4,
                       bytes=np.zeros((4, 3)), calls=[1] * 4, n_runs=4, types=["conv2d"] * 4,
                       channels=[16, 16, 16, 0], in_channels=[3, 24, 32, 0], valid=[1, 1, 0.5, 0.25])
    model = EnergyModel(terms=("static",), static_j_per_op={"conv2d": 1.0}, channel_block=16)
    assert model.predict_runs(table)[0] == pytest.approx([100, 100 * 32 / 24, 50, 25])
    # without a block nothing is padded; the valid share stays
    assert EnergyModel(terms=("static",), static_j_per_op={"conv2d": 1.0}).predict_runs(table)[0] == \
        pytest.approx([100, 100, 50, 25])
    with pytest.raises(ValueError, match="valid shares"):
        LayerTable(run=[0], repeat=[1], op_keys=[], ops=np.zeros((1, 0)), bytes=np.zeros((1, 3)), calls=[1],
                   n_runs=1, valid=[1.5])
    sub = table.subset([2, 0])
    assert sub.in_channels[sub.run == 0].tolist() == [32] and sub.valid[sub.run == 1].tolist() == [1]
    both = LayerTable.concat([table, sub])
    assert both.in_channels.tolist() == table.in_channels.tolist() + sub.in_channels.tolist()



def test_exposed_output_bytes_and_output_balance_are_recovered():
    """A blocked kernel with little work per output element is bound by writing its output: the
    output bytes its ops do not hide, max(0, out - ops / balance), get a price of their own."""
    rng = np.random.default_rng(31)
    n = 120
    table = _table(rng, n, types=("conv2d", "relu"))
    conv = np.asarray([k == "conv2d" for k in table.types])
    table.channels = np.where(conv, 64.0, 0.0)
    table.in_channels = np.where(conv, 32.0, 0.0)
    # output bytes from 1/100 to 1/2 of the ops: half the convolutions are output-bound at balance 10
    table.bytes[:, 1] = table.ops.sum(axis=1) * 10.0 ** rng.uniform(-2, np.log10(0.5), n)
    truth = EnergyModel(terms=("static",), static_j_per_op={"conv2d": 1e-9, "relu": 5e-8}, channel_block=16,
                        exposed_j={"conv2d": 3e-8}, output_balance=10.0, peak_ops_per_s=1e9,
                        bandwidth_bytes_per_s=1e12)
    exposed = calibrate._energy.exposed_bytes(table, 10.0, 16)
    assert np.all(exposed[~conv] == 0) and 0.2 < np.mean(exposed[conv] > 0) < 0.8
    y, _ = truth.predict_runs(table)
    model, _ = fit_energy_model(table, y, terms=("static",), static_w=1.0, prior_strength=0.0,
                                peak_ops_per_s=1e9, bandwidth_bytes_per_s=1e12, channel_block=16, output_bound=True)
    assert model.output_balance == pytest.approx(10.0, rel=1e-9)
    assert model.exposed_j["conv2d"] == pytest.approx(3e-8, rel=1e-6)
    assert model.static_j_per_op["conv2d"] == pytest.approx(1e-9, rel=1e-6)
    back = EnergyModel.from_dict(model.to_dict())
    assert back.exposed_j == model.exposed_j and back.output_balance == model.output_balance
    assert np.allclose(back.predict_runs(table)[0], y, rtol=1e-6)
    # without the term (the default) the output-bound rows are missed
    off, _ = fit_energy_model(table, y, terms=("static",), static_w=1.0, prior_strength=0.0, peak_ops_per_s=1e9,
                              bandwidth_bytes_per_s=1e12, channel_block=16)
    assert off.exposed_j == {} and "exposed_j" not in off.to_dict()
    assert np.max(np.abs(off.predict_runs(table)[0] / y - 1)) > 0.1


def test_valid_taps_and_input_padding_are_what_the_fit_recovers():
    """Runs priced on the valid, padded ops are fitted exactly only when the table carries the
    valid shares and input channels: the fit recovers the price; without them it cannot."""
    rng = np.random.default_rng(41)
    table = _table(rng, 80, types=("conv2d",))
    table.channels = rng.integers(16, 128, 80).astype(float)
    table.in_channels = rng.integers(16, 128, 80).astype(float)
    table.valid = rng.uniform(0.5, 1.0, 80)
    truth = EnergyModel(terms=("static",), static_j_per_op={"conv2d": 2e-9}, channel_block=16,
                        peak_ops_per_s=1e9, bandwidth_bytes_per_s=1e12)
    y, _ = truth.predict_runs(table)
    fixed = dict(terms=("static",), static_w=1.0, prior_strength=0.0, peak_ops_per_s=1e9,
                 bandwidth_bytes_per_s=1e12, channel_block=16, output_bound=False)
    model, _ = fit_energy_model(table, y, **fixed)
    assert model.static_j_per_op["conv2d"] == pytest.approx(2e-9, rel=1e-9)
    blind = LayerTable(run=table.run, repeat=table.repeat, op_keys=table.op_keys, ops=table.ops, bytes=table.bytes,
                       calls=table.calls, n_runs=table.n_runs, types=table.types, channels=table.channels)
    off, _ = fit_energy_model(blind, y, **fixed)
    assert np.median(np.abs(off.predict_runs(blind)[0] / y - 1)) > 0.05


def test_narrow_pool_window_price_is_recovered():
    """Poolings with a 2-wide window at stride >= 2 pay a price per output byte on top of their
    window-row price: the fit recovers it; without the term those pools are missed; convolutions
    (channel-blocked) and other windows never pay it."""
    rng = np.random.default_rng(61)
    n = 120
    table = _table(rng, n, types=("maxpool2d", "conv2d"))
    pool = np.asarray([k == "maxpool2d" for k in table.types])
    table.kernel = rng.integers(1, 5, n).astype(float)
    table.stride = rng.integers(1, 4, n).astype(float)
    table.window = np.minimum(table.stride, table.kernel) / table.kernel
    table.rows = 10.0 ** rng.uniform(4, 7, n)
    table.channels = np.where(pool, 0.0, 32.0)
    narrow = calibrate._energy.narrow_output_bytes(table, (2, 2))
    assert np.all(narrow[~pool] == 0) and 0.1 < np.mean(narrow[pool] > 0) < 0.5
    assert np.all((narrow > 0) == (pool & (table.kernel == 2) & (table.stride >= 2)))
    truth = EnergyModel(terms=("static",), static_j_per_op={"maxpool2d": 3e-8, "conv2d": 1e-9},
                        row_j={"maxpool2d": 4e-7}, narrow_j={"maxpool2d": 5e-8}, narrow_window=(2, 2),
                        peak_ops_per_s=1e9, bandwidth_bytes_per_s=1e12)
    y, _ = truth.predict_runs(table)
    fixed = dict(terms=("static",), static_w=1.0, prior_strength=0.0, peak_ops_per_s=1e9,
                 bandwidth_bytes_per_s=1e12, output_bound=False)
    model, _ = fit_energy_model(table, y, narrow_window=(2, 2), **fixed)
    assert model.narrow_j == {"maxpool2d": pytest.approx(5e-8, rel=1e-6)} and model.narrow_window == (2, 2)
    assert model.row_j["maxpool2d"] == pytest.approx(4e-7, rel=1e-6)
    back = EnergyModel.from_dict(model.to_dict())
    assert back.narrow_window == (2, 2) and np.allclose(back.predict_runs(table)[0], y, rtol=1e-6)
    off, _ = fit_energy_model(table, y, **fixed)
    assert off.narrow_j == {} and "narrow_j" not in off.to_dict() and "narrow_window" not in off.to_dict()
    assert np.max(np.abs(off.predict_runs(table)[0] / y - 1)) > 0.1
    # a table without window sizes cannot see the class
    blind = table.subset(range(n))
    blind.kernel = np.zeros(n)
    unseen, _ = fit_energy_model(blind, y, narrow_window=(2, 2), **fixed)
    assert unseen.narrow_j == {} and np.max(np.abs(unseen.predict_runs(blind)[0] / y - 1)) > 0.1
    with pytest.raises(ValueError, match="narrow window"):
        fit_energy_model(table, y, narrow_window=(2, 0), **fixed)
    with pytest.raises(ValueError, match="kernel sizes and strides"):
        LayerTable(run=[0], repeat=[1], op_keys=[], ops=np.zeros((1, 0)), bytes=np.zeros((1, 3)), calls=[1],
                   n_runs=1, stride=[-1])


def test_linear_weight_packing_and_weights_beyond_cache_are_recovered():
    """GEMM (linear) calls with lo <= M < hi pay a price per weight byte (the weight panel packed per
    call), and calls whose weights exceed the cache another: the fit recovers both prices; without
    the terms (or without GEMM rows in the table) those calls are missed."""
    rng = np.random.default_rng(53)
    n = 120
    table = _table(rng, n, types=("linear", "relu"))
    lin = np.asarray([k == "linear" for k in table.types])
    table.gemm_rows = np.where(lin, rng.integers(1, 64, n), 0).astype(float)
    table.bytes[:, 2] = np.where(lin, 10.0 ** rng.uniform(5, 8, n), 0.0)
    truth = EnergyModel(terms=("static",), static_j_per_op={"linear": 1e-9, "relu": 5e-8},
                        pack_j={"linear": 2e-9}, pack_rows=(4, 16), weight_spill_j={"linear": 1.5e-9},
                        weight_cache_bytes=2e7, peak_ops_per_s=1e9, bandwidth_bytes_per_s=1e12)
    packed = calibrate._energy.packed_bytes(table, (4, 16))
    uncached = calibrate._energy.uncached_weight_bytes(table, 2e7)
    assert np.all(packed[~lin] == 0) and 0.1 < np.mean(packed[lin] > 0) < 0.5
    assert np.all(uncached[~lin] == 0) and 0.1 < np.mean(uncached[lin] > 0) < 0.9
    y, _ = truth.predict_runs(table)
    fixed = dict(terms=("static",), static_w=1.0, prior_strength=0.0, peak_ops_per_s=1e9,
                 bandwidth_bytes_per_s=1e12)
    model, _ = fit_energy_model(table, y, pack_rows=(4, 16), weight_cache_bytes=2e7, **fixed)
    assert model.pack_j["linear"] == pytest.approx(2e-9, rel=1e-6) and model.pack_rows == (4, 16)
    assert model.weight_spill_j["linear"] == pytest.approx(1.5e-9, rel=1e-6)
    assert set(model.pack_j) == set(model.weight_spill_j) == {"linear"}
    back = EnergyModel.from_dict(model.to_dict())
    assert back.pack_rows == (4, 16) and back.weight_cache_bytes == 2e7
    assert np.allclose(back.predict_runs(table)[0], y, rtol=1e-6)
    off, _ = fit_energy_model(table, y, **fixed)
    assert off.pack_j == {} and off.weight_spill_j == {}
    assert "pack_j" not in off.to_dict() and "weight_spill_j" not in off.to_dict()
    assert np.max(np.abs(off.predict_runs(table)[0] / y - 1)) > 0.1
    blind = table.subset(range(n))
    blind.gemm_rows = np.zeros(n)
    unseen, _ = fit_energy_model(blind, y, pack_rows=(4, 16), weight_cache_bytes=2e7, **fixed)
    assert unseen.pack_j == {} and np.max(np.abs(unseen.predict_runs(blind)[0] / y - 1)) > 0.1
    with pytest.raises(ValueError, match="pack rows"):
        fit_energy_model(table, y, pack_rows=(16, 4), **fixed)
    with pytest.raises(ValueError, match="weight cache bytes"):
        fit_energy_model(table, y, weight_cache_bytes=0.0, **fixed)
    with pytest.raises(ValueError, match="GEMM rows"):
        LayerTable(run=[0], repeat=[1], op_keys=[], ops=np.zeros((1, 0)), bytes=np.zeros((1, 3)), calls=[1],
                   n_runs=1, gemm_rows=[-1])


def _fresh_table(rng, n):
    """Runs of convolutions, ReLUs and max-pools with outputs around the 32 MiB fresh threshold;
    the pools allocate int64 indices (2x the fp32 output's bytes), half the ReLUs are in place and
    about a third of the rest were measured with reused outputs (some in part)."""
    table = _table(rng, n, types=("conv2d", "relu", "maxpool2d"))
    kinds = np.asarray(table.types)
    table.bytes[:, 1] = 10.0 ** rng.uniform(6, 9, n)
    table.index_bytes = np.where(kinds == "maxpool2d", 2.0 * table.bytes[:, 1], 0.0)
    table.inplace = (kinds == "relu") & (np.arange(n) % 2 == 0)
    table.fresh_share = np.where(table.inplace | (rng.uniform(size=n) < 0.7), 1.0, rng.choice([0.0, 1 / 3], n))
    return table


def test_fresh_output_price_is_recovered_and_spares_in_place_and_reused_calls():
    """Outputs (and max-pool indices) above the threshold pay a price per byte on every call: the fit
    recovers it per layer type; without the term those calls are missed; in-place calls pay
    nothing, runs that reused their outputs only for the share of calls that did not; a type the
    fit never saw allocate that much gets the median of the fitted prices; the profile form
    round-trips."""
    rng = np.random.default_rng(71)
    n = 120
    table = _fresh_table(rng, n)
    cap = float(2 ** 25)
    fresh = calibrate._energy.fresh_bytes(table, cap)
    assert np.all(fresh[table.inplace | (table.fresh_share == 0)] == 0)
    out, idx = table.bytes[:, 1], table.index_bytes
    free = ~table.inplace
    assert np.allclose(fresh[free], ((np.where(out > cap, out, 0) + np.where(idx > cap, idx, 0))
                                     * table.fresh_share)[free], rtol=1e-12, atol=0)
    assert np.any((fresh > 0) & (table.fresh_share < 1))
    assert 0.2 < np.mean(fresh[free] > 0) < 0.9
    # an index tensor above the threshold pays even where its output does not
    assert np.any(free & (idx > cap) & (out <= cap))
    truth = EnergyModel(terms=("static",), static_j_per_op={"conv2d": 1e-9, "relu": 5e-8, "maxpool2d": 3e-8},
                        fresh_j={"conv2d": 4e-8, "relu": 2.5e-8, "maxpool2d": 1.5e-8}, fresh_threshold_bytes=cap,
                        peak_ops_per_s=1e9, bandwidth_bytes_per_s=1e12)
    y, _ = truth.predict_runs(table)
    fixed = dict(terms=("static",), static_w=1.0, prior_strength=0.0, peak_ops_per_s=1e9,
                 bandwidth_bytes_per_s=1e12, output_bound=False)
    model, _ = fit_energy_model(table, y, **fixed)     # the default threshold: 32 MiB
    assert calibrate.FRESH_THRESHOLD_BYTES == cap and model.fresh_threshold_bytes == cap
    assert model.fresh_j == {k: pytest.approx(v, rel=1e-6) for k, v in truth.fresh_j.items()}
    assert model.fresh_j_default == pytest.approx(2.5e-8, rel=1e-6)
    assert np.allclose(model.predict_runs(table)[0], y, rtol=1e-6)
    back = EnergyModel.from_dict(model.to_dict())
    assert back.fresh_threshold_bytes == cap and np.allclose(back.predict_runs(table)[0], y, rtol=1e-6)
    # in place: the same call costs less by exactly its fresh bytes' price
    moved = table.subset(range(n))
    moved.inplace = np.ones(n, dtype=bool)
    saved = model.predict_runs(table)[0] - model.predict_runs(moved)[0]
    price = np.asarray([truth.fresh_j[k] for k in table.types])
    assert np.allclose(saved, price * fresh, rtol=1e-9, atol=0)
    # a layer type no row allocated above the threshold: the median of the fitted prices
    other = table.subset(range(3))
    other.types = ["linear"] * 3
    other.inplace = np.zeros(3, dtype=bool)
    other.fresh_share = np.ones(3)
    other.index_bytes = np.zeros(3)
    other.bytes[:, 1] = [1e6, 1e8, 1e9]
    assert np.allclose(model.layer_terms(other)["static"] - model._per_op(other) * model._roofline_ops(other),
                       [0.0, 2.5e-8 * 1e8, 2.5e-8 * 1e9])
    off, _ = fit_energy_model(table, y, fresh_threshold_bytes=None, **fixed)
    assert off.fresh_j == {} and "fresh_j" not in off.to_dict() and "fresh_threshold_bytes" not in off.to_dict()
    assert np.max(np.abs(off.predict_runs(table)[0] / y - 1)) > 0.1
    # fitted as if every run had allocated fresh outputs, the price is biased
    blind = table.subset(range(n))
    blind.fresh_share = np.ones(n)
    biased, _ = fit_energy_model(blind, y, **fixed)
    assert np.max(np.abs(biased.predict_runs(blind)[0] / y - 1)) > 0.05
    with pytest.raises(ValueError, match="fresh threshold bytes"):
        fit_energy_model(table, y, fresh_threshold_bytes=-1.0, **fixed)
    with pytest.raises(ValueError, match="fresh output shares"):
        LayerTable(run=[0], repeat=[1], op_keys=[], ops=np.zeros((1, 0)), bytes=np.zeros((1, 3)), calls=[1],
                   n_runs=1, fresh_share=[1.5])
    with pytest.raises(ValueError, match="index bytes"):
        LayerTable(run=[0], repeat=[1], op_keys=[], ops=np.zeros((1, 0)), bytes=np.zeros((1, 3)), calls=[1],
                   n_runs=1, index_bytes=[-1])


def test_fresh_and_reused_flags_survive_subset_and_concat():
    rng = np.random.default_rng(72)
    table = _fresh_table(rng, 12)
    both = LayerTable.concat([table, table.subset([1, 5])])
    assert np.array_equal(both.fresh_share, np.concatenate([table.fresh_share, table.fresh_share[[1, 5]]]))
    assert np.array_equal(both.index_bytes, np.concatenate([table.index_bytes, table.index_bytes[[1, 5]]]))
    assert np.array_equal(both.inplace, np.concatenate([table.inplace, table.inplace[[1, 5]]]))
