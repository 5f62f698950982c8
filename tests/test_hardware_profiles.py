"""hardware_profiles: loader, validator, extends resolution and the built-in profiles."""
import json
import os
import re
import shutil

import pytest
import yaml

import hardware_profiles as hp
from tosim.cli import main

HERE = os.path.dirname(__file__)
BAD = os.path.join(HERE, "fixtures", "profiles", "bad")
GOOD = os.path.join(HERE, "fixtures", "profiles", "good")

# One fixture per validation error; the whole one-line message is asserted.
BAD_CASES = {
    "duplicate_key.yaml": "duplicate_key.yaml:6: invalid YAML: duplicate key 'carbon' (first on line 4)",
    "unknown_key.yaml": "unknown_key.yaml:4: technology.countng: unknown key 'countng' (did you mean 'counting'?)",
    "wrong_type.yaml": "wrong_type.yaml:3: formats: expected a list, not string",
    "type_override.yaml": "type_override.yaml:3: technology: expected a mapping, not string",
    "unknown_design.yaml": "unknown_design.yaml:4: units.mul.design: unknown multiplier design 'boothwallace' "
                           "(did you mean 'booth_wallace'?); known: booth_wallace, array, dadda",
    "unknown_format.yaml": "unknown_format.yaml:3: formats[1]: unknown format 'fp23' (did you mean 'fp32'?); "
                           "known: fp16, bf16, fp32, fp64, fp8_e4m3, fp8_e5m2, tf32, int8, int4, int32",
    "zero_cost.yaml": "zero_cost.yaml:5: technology.gates.NAND: transistor cost must be a positive integer, not 0",
    "negative_cost.yaml": "negative_cost.yaml:4: technology.cells.full_adder: transistor cost must be a positive "
                          "integer, not -10",
    "recipe_cycle.yaml": "recipe_cycle.yaml:4: recipes.exp: recipe cycle: exp -> sigmoid -> exp",
    "recipe_unknown_op.yaml": "recipe_unknown_op.yaml:5: recipes.softplus.forward.expo: unknown op or recipe "
                              "'expo' (did you mean 'exp'?)",
    "missing_base.yaml": "missing_base.yaml:2: extends: base profile './no_such_base.yaml' not found: not a "
                         "built-in profile and no file no_such_base.yaml",
    "missing_builtin.yaml": "missing_builtin.yaml:2: extends: base profile 'cmos-generik' not found: not a "
                            "built-in profile (did you mean 'cmos-generic'?) and no file cmos-generik",
    "extends_cycle_a.yaml": "extends_cycle_b.yaml:2: extends: cycle extends_cycle_a.yaml -> extends_cycle_b.yaml "
                            "-> extends_cycle_a.yaml",
    "unparsable.yaml": "unparsable.yaml:4: invalid YAML: expected ',' or '}', but got '<scalar>'",
    "empty.yaml": "empty.yaml:1: profile is empty",
    "not_mapping.yaml": "not_mapping.yaml:1: top level must be a mapping of profile keys, not list",
    "incomplete.yaml": "incomplete.yaml:1: missing key 'datapath' (a profile that extends nothing must define "
                       "technology, units, datapath, formats and recipes)",
    "seed_bits.yaml": "seed_bits.yaml:4: units.sqrt.seed_bits: seed bits must be an integer in 2..16, not 40",
    # numbers must be finite: a NaN or an infinity would make every score nan or inf
    "device_nan_coefficient.yaml": "device_nan_coefficient.yaml:4: devices.gpu.coefficients[0]: expected a finite "
                                   "number, not nan",
    "device_huge_coefficient.yaml": "device_huge_coefficient.yaml:5: devices.gpu.coefficients[1]: expected a finite "
                                    "number, not inf",
    "carbon_nan.yaml": "carbon_nan.yaml:4: carbon.grid_gco2_per_kwh: expected a finite number, not nan",
    "memory_energy_inf.yaml": "memory_energy_inf.yaml:6: memory.levels[1].energy_per_byte_j: expected a finite "
                              "number, not inf",
    "compute_energy_nan.yaml": "compute_energy_nan.yaml:5: memory.compute.mac_energy_j.fp32: expected a finite "
                               "number, not nan",
    "gate_cost_inf.yaml": "gate_cost_inf.yaml:4: technology.gates.NOT: transistor cost must be a positive integer, "
                          "not inf",
    "device_unit.yaml": "device_unit.yaml:4: devices.gpu.unit: unknown unit 'kWh': device coefficients give joules, "
                        "so unit can only be J",
    "device_phase.yaml": "device_phase.yaml:4: devices.gpu.phase: unknown phase 'train' (did you mean 'training'?); "
                         "known: inference, validation, training, mixed",
    # found after the merge, but caused by the user's list, not by the base's default
    "formats_drop_default.yaml": "formats_drop_default.yaml:4: formats: the default format 'fp32' inherited from "
                                 "builtin:cmos-generic is not among these formats (fp16); set default_format too",
}


@pytest.fixture
def in_bad(monkeypatch):
    monkeypatch.chdir(BAD)


@pytest.mark.parametrize("fixture", sorted(BAD_CASES))
def test_bad_profile_message(fixture, in_bad):
    with pytest.raises(hp.ProfileError) as info:
        hp.load_file(fixture)
    assert str(info.value) == BAD_CASES[fixture]


@pytest.mark.parametrize("fixture", sorted(BAD_CASES))
def test_validate_cli_one_line_exit_2(fixture, in_bad, capsys):
    assert main(["profile", "validate", fixture]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"tosim: error: {BAD_CASES[fixture]}\n"


def test_every_bad_fixture_has_a_case():
    assert sorted(f for f in os.listdir(BAD) if f.endswith(".yaml")) == sorted(
        set(BAD_CASES) | {"extends_cycle_b.yaml"})


def test_validate_keeps_going_past_bad_files(in_bad, capsys):
    good = os.path.join(GOOD, "my-alu.yaml")
    assert main(["profile", "validate", "empty.yaml", good, "zero_cost.yaml"]) == 2
    out, err = capsys.readouterr()
    assert out == f"{good}: ok (my-alu; {good} <- builtin:cmos-generic)\n"
    assert err.count("tosim: error:") == 2


def test_missing_file_and_unknown_name():
    with pytest.raises(hp.ProfileError, match=r"^nope\.yaml: no such file$"):
        hp.load_file("nope.yaml")
    with pytest.raises(hp.ProfileError, match=r"^li2021: no such profile: not a built-in profile "
                                              r"\(did you mean 'li2022'\?\) \(cmos-fast, cmos-generic, "
                                              r"cmos-quant, cmos-small, getzner2023-cpu, horowitz45, li2022, yang2017\) and not a file$"):
        hp.load("li2021")


@pytest.mark.parametrize("name", hp.builtin_names())
def test_builtin_profiles_resolve(name):
    prof = hp.load(name)
    assert prof.name == name
    assert set(prof.units) == set(hp.BASIC_OPS)
    for recipe in hp.REQUIRED_RECIPES:
        assert prof.recipe_ops(recipe, "forward")
        assert prof.recipe_ops(recipe, "backward")
    assert prof.default_format in prof.formats


def test_builtin_set():
    assert {"li2022", "cmos-generic", "cmos-fast", "cmos-small"} <= set(hp.builtin_names())
    assert hp.DEFAULT_PROFILE == "cmos-generic"


def test_li2022_reproduces_the_paper():
    prof = hp.load("li2022")
    assert prof.technology["counting"] == "structural"
    assert prof.technology["cells"]["full_adder"] == 10
    assert prof.datapath == "minimal"
    assert {op: u["design"] for op, u in prof.units.items()} == {
        "add": "ripple_carry", "sub": "ripple_carry", "cmp": "ripple_carry",
        "mul": "booth_wallace", "div": "srt_radix2", "sqrt": "newton_raphson"}
    # eq. 2: sigmoid = sub + add + div + root per element
    assert prof.recipe_ops("sigmoid") == {"add": 1, "sub": 1, "div": 1, "sqrt": 1}
    # eq. 3: GELU = sub + add + div + root + 2 mul
    assert prof.recipe_ops("gelu") == {"add": 1, "sub": 1, "mul": 2, "div": 1, "sqrt": 1}
    dev = prof.devices
    assert dev["laptop-cpu-dnn-tos"]["coefficients"] == [1.71e3, 3.65e-12]      # eq. 4
    assert dev["laptop-cpu-dnn-flops"]["coefficients"] == [1.73e3, 8.42e-8]
    assert dev["desktop-cpu-dnn-tos"]["coefficients"] == [9.96e2, 2.47e-12]
    assert dev["desktop-gpu-cnn-tos"]["coefficients"] == [1.76e3, 2.61e-15]     # eq. 5
    assert dev["desktop-cpu-cnn-flops"]["coefficients"] == [2.67e3, 5.73e-10]
    assert all(d["source"].startswith("li2022 eq.") for d in dev.values())


def test_variants_differ_only_in_designs():
    base = hp.load("cmos-generic").to_dict()
    for name in ("cmos-fast", "cmos-small"):
        variant = hp.load(name).to_dict()
        differing = {k for k in set(base) | set(variant) if base.get(k) != variant.get(k)}
        assert differing == {"name", "description", "units"}, name


def test_recipe_expansion_nests_recipes():
    prof = hp.load("cmos-generic")
    exp = prof.recipe_ops("exp")
    sig = prof.recipe_ops("sigmoid")
    assert sig == {op: exp.get(op, 0) + {"add": 1, "div": 1}.get(op, 0)
                   for op in hp.BASIC_OPS if exp.get(op, 0) + {"add": 1, "div": 1}.get(op, 0)}
    silu_b = prof.recipe_ops("silu", "backward")
    assert silu_b["mul"] == sig.get("mul", 0) + 3


# ---- extends: resolution and merge rules ---------------------------------------------------

def test_custom_profile_merges_into_base():
    prof = hp.load_file(os.path.join(GOOD, "my-alu.yaml"))
    base = hp.load("cmos-generic")
    gates = prof.technology["gates"]
    assert gates["XOR"] == 8 and gates["XNOR"] == 8          # overridden
    assert gates["NAND"] == base.technology["gates"]["NAND"]  # inherited, merged per gate
    assert prof.technology["counting"] == "synthesized"
    assert prof.units["mul"] == {"design": "dadda", "final_adder": "sklansky"}
    assert prof.units["div"] == base.units["div"]
    assert prof.formats == ["fp16", "fp32"]                   # lists replace
    assert prof.default_format == "fp16"
    assert prof.recipe_ops("softplus") == {
        op: n for op, n in ((op, base.recipe_ops("exp").get(op, 0) + base.recipe_ops("log").get(op, 0)
                             + (op == "add")) for op in hp.BASIC_OPS) if n}
    assert prof.devices["my-gpu"]["coefficients"] == [12.5, 3.0e-13]
    assert prof.data["description"].startswith("Sklansky")


def test_chain_of_files_relative_paths(monkeypatch):
    monkeypatch.chdir(GOOD)
    prof = hp.load_file("child-of-custom.yaml")
    assert prof.chain == ["builtin:cmos-generic", "my-alu.yaml", "child-of-custom.yaml"]
    assert prof.units["div"] == {"design": "non_restoring", "adder": "ripple_carry"}
    assert prof.units["mul"]["design"] == "dadda"
    assert prof.name == "child"


def test_units_and_recipes_replace_whole(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "extends: cmos-generic\n"
        "units:\n  sqrt: {design: digit_recurrence}\n"
        "recipes:\n  exp: {forward: {mul: 2}, backward: {mul: 1}}\n")
    prof = hp.load_file(str(tmp_path / "p.yaml"))
    assert prof.units["sqrt"] == {"design": "digit_recurrence"}   # no stale seed_bits
    assert prof.recipe_ops("exp") == {"mul": 2}                   # no stale add/sub/cmp
    assert prof.name == "p"                                       # name is not inherited


def test_not_inherited_keys(tmp_path):
    (tmp_path / "q.yaml").write_text("extends: li2022\n")
    prof = hp.load_file(str(tmp_path / "q.yaml"))
    assert prof.name == "q"
    assert "description" not in prof.data
    assert prof.devices == hp.load("li2022").devices


def test_error_after_merge_names_the_file_that_set_the_key(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({
        "extends": "cmos-generic",
        "recipes": {"softplus": {"forward": {"exp": 1, "add": 1, "lgo": 1}}}}))
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nformats: [fp32]\n")
    with pytest.raises(hp.ProfileError) as info:
        hp.load_file(str(tmp_path / "child.yaml"))
    msg = str(info.value)
    assert re.fullmatch(r".*base\.yaml:\d+: recipes\.softplus\.forward\.lgo: unknown op or recipe 'lgo' "
                        r"\(did you mean 'log'\?\)", msg), msg


def test_default_format_must_be_listed(tmp_path):
    (tmp_path / "r.yaml").write_text("extends: cmos-generic\nformats: [fp16]\ndefault_format: fp32\n")
    with pytest.raises(hp.ProfileError, match=r"r\.yaml:3: default_format: default format 'fp32' is not "
                                              r"among formats \(fp16\)$"):
        hp.load_file(str(tmp_path / "r.yaml"))


def test_default_format_named_in_child_but_missing_from_base_formats(tmp_path):
    (tmp_path / "base.yaml").write_text("extends: cmos-generic\nformats: [fp16, fp32]\ndefault_format: fp16\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\ndefault_format: bf16\n")
    with pytest.raises(hp.ProfileError) as info:
        hp.load_file(str(tmp_path / "child.yaml"))
    assert str(info.value) == (f"{tmp_path / 'child.yaml'}:2: default_format: default format 'bf16' is not "
                               f"among formats (fp16, fp32)")
    (tmp_path / "fine.yaml").write_text("extends: base.yaml\nformats: [bf16]\ndefault_format: bf16\n")
    assert hp.load_file(str(tmp_path / "fine.yaml")).default_format == "bf16"


def test_formats_dropping_default_in_middle_of_chain_names_that_file(tmp_path):
    (tmp_path / "mid.yaml").write_text("extends: cmos-generic\nformats: [bf16]\n")
    (tmp_path / "top.yaml").write_text("extends: mid.yaml\nname: top\n")
    with pytest.raises(hp.ProfileError) as info:
        hp.load_file(str(tmp_path / "top.yaml"))
    assert str(info.value) == (f"{tmp_path / 'mid.yaml'}:2: formats: the default format 'fp32' inherited from "
                               f"builtin:cmos-generic is not among these formats (bf16); set default_format too")


# ---- YAML 1.2 floats: 1e-12 is a number, not a string ---------------------------------------

def test_exponent_floats_without_dot_are_numbers():
    prof = hp.load_file(os.path.join(GOOD, "sci-energies.yaml"))
    levels = prof.memory["levels"]
    assert levels[0]["energy_per_access_j"] == 5e-12 and type(levels[0]["energy_per_access_j"]) is float
    assert levels[1]["energy_per_byte_j"] == 2.5e-10 and type(levels[1]["energy_per_byte_j"]) is float
    assert prof.memory["compute"]["op_energy_j"]["fp32"] == {"add": 9e-13, "mul": 3.7e-12}
    assert prof.memory["compute"]["op_energy_j"]["fp16"] == {"add": 4e-13, "mul": 1.1e-12}   # merged from base
    assert prof.memory["compute"]["mac_energy_j"] == {"fp16": 5e-13}
    assert prof.devices["gpu"]["coefficients"] == [1000.0, -200000.0, 5000.0]
    assert prof.devices["gpu"]["phase"] == "mixed"               # what tosim fit writes for mixed runs
    assert prof.grid_gco2_per_kwh == 475.0


def test_exponent_floats_in_a_small_profile(tmp_path):
    (tmp_path / "m.yaml").write_text(
        "extends: horowitz45\nmemory:\n  levels:\n"
        "    - {name: dram, bytes_per_access: 8, energy_per_access_j: 5e-12}\n")
    level = hp.load_file(str(tmp_path / "m.yaml")).memory["levels"][0]
    assert level["energy_per_access_j"] == 5e-12 and isinstance(level["energy_per_access_j"], float)


def test_exponent_resolver_is_local_to_profiles():
    assert yaml.safe_load("[1e-12, 5E3]") == ["1e-12", "5E3"]           # PyYAML's own loader untouched
    assert hp.loader._ProfileLoader is not yaml.SafeLoader


@pytest.mark.parametrize("name", hp.builtin_names())
def test_builtin_values_read_the_same_as_with_safe_loader(name):
    with open(hp.builtin_path(name), encoding="utf-8") as fh:
        text = fh.read()
    assert yaml.load(text, Loader=hp.loader._ProfileLoader) == yaml.safe_load(text)


def test_schema_version_checked(tmp_path):
    (tmp_path / "s.yaml").write_text("schema: 2\nextends: cmos-generic\n")
    with pytest.raises(hp.ProfileError, match=r"s\.yaml:1: schema: unsupported schema version 2 "
                                              r"\(this tosim reads version 1\)$"):
        hp.load_file(str(tmp_path / "s.yaml"))


def test_copied_builtin_validates_standalone(tmp_path):
    shutil.copy(hp.builtin_path("li2022"), tmp_path / "mine.yaml")
    prof = hp.load_file(str(tmp_path / "mine.yaml"))
    assert prof.to_dict() == hp.load("li2022").to_dict()


# ---- the CLI ------------------------------------------------------------------------------

def test_show_json_prints_resolved_profile(capsys):
    assert main(["profile", "show", "li2022", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == hp.load("li2022").to_dict()
    assert shown["name"] == "li2022"


def test_show_yaml_roundtrips(capsys):
    assert main(["profile", "show", "cmos-fast"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# cmos-fast, resolved from: builtin:cmos-fast <- builtin:cmos-generic\n")
    assert yaml.safe_load(out) == hp.load("cmos-fast").to_dict()


def test_list(capsys):
    assert main(["profile", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == hp.builtin_names()
    assert [r["name"] for r in rows if r["default"]] == ["cmos-generic"]
    assert {r["name"]: r["extends"] for r in rows}["cmos-small"] == "cmos-generic"


def test_show_unknown_profile_is_one_line(capsys):
    assert main(["profile", "show", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tosim: error: nope: no such profile")


def test_bad_usage_is_one_line(capsys):
    assert main(["profile", "frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tosim: error: argument ACTION: invalid choice: 'frobnicate'")


def test_a_folder_or_binary_file_is_not_a_profile(tmp_path, capsys):
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00bin")
    for name, message in (("dir.yaml", "is a folder, not a profile file"), ("bin.yaml", "not a text file (not UTF-8)")):
        path = str(tmp_path / name)
        with pytest.raises(hp.ProfileError, match=r"^" + re.escape(f"{path}: {message}") + "$"):
            hp.load_file(path)
        assert main(["profile", "validate", path]) == 2
        assert capsys.readouterr().err == f"tosim: error: {path}: {message}\n"
