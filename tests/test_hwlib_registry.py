# amaranth: UnusedElaboratable=no
"""hwlib.registry: the design names of profiles map to hwlib constructors."""
import pytest
from amaranth.hdl import Fragment
from amaranth.lib import wiring

from hardware_profiles import DESIGNS as PROFILE_DESIGNS
from hwlib import registry


def test_registry_names_equal_profile_schema():
    assert {k: tuple(v) for k, v in registry.DESIGNS.items()} == PROFILE_DESIGNS


@pytest.mark.parametrize("kind,name", [(k, n) for k, names in registry.DESIGNS.items() for n in names])
def test_every_design_resolves_to_a_component(kind, name):
    cls = registry.design_class(name, kind)
    assert issubclass(cls, wiring.Component)
    assert cls.__doc__ and len(cls.__doc__) > 80   # states growth and origin


def test_unknown_design_message():
    with pytest.raises(ValueError, match=r"^Unknown design 'kogge_ston' for unit 'add'; expected one of "
                                         r"brent_kung, carry_lookahead, carry_select, carry_skip, "
                                         r"kogge_stone, ripple_carry, sklansky$"):
        registry.design_class("kogge_ston", "add")
    with pytest.raises(ValueError, match=r"^Unknown unit kind 'pow'; expected one of add, mul, div, sqrt$"):
        registry.designs_for("pow")


def test_build_passes_parameters():
    adder = registry.build("ripple_carry", 8, kind="add", carry_in=False, subtract=False)
    assert adder.s.shape().width == 8
    assert not hasattr(adder, "cin")
    Fragment.get(adder, None)   # elaborated, so Amaranth does not warn about an unused circuit
