import pytest

from physground.errors import UnknownNameError
from physground.registry import Registry
from physground.scenario import SCENARIOS
from physground.world_model import MODELS


def test_unknown_name_suggests_closest():
    with pytest.raises(UnknownNameError, match=r"did you mean 'rigid/projectile'"):
        SCENARIOS.get("rigid/projectil")


def test_lazy_entry_loads_on_first_use():
    registry: Registry[object] = Registry("thing")
    registry.register("json-dumps", "json:dumps", tags=["text"])
    import json

    assert registry.get("json-dumps") is json.dumps
    assert registry.names("text") == ["json-dumps"]
    assert registry.names("other") == []


def test_tags_select_families():
    assert "rigid/projectile" in SCENARIOS.select(["tag:rigid"])
    with pytest.raises(UnknownNameError, match="no scenario carries tag 'nope'"):
        SCENARIOS.select(["tag:nope"])


def test_duplicate_registration_is_refused():
    registry: Registry[object] = Registry("thing")
    registry.register("a", object())
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a", object())


def test_baselines_and_reference_registered():
    assert {"copy-last", "constant-velocity", "reference"} <= set(MODELS.names())


def test_requires_laws_any_or_all_is_explicit():
    from physground.metrics.registry import laws_hold

    need = {"ballistic", "non_penetration"}
    assert laws_hold(need, "any", {"ballistic"}) and not laws_hold(need, "all", {"ballistic"})
    assert laws_hold(need, "all", {"ballistic", "non_penetration", "energy_conserved"})
    assert laws_hold((), "all", ()) and not laws_hold(need, "any", {"incompressible"})


def test_unknown_laws_are_refused_with_did_you_mean():
    import pytest

    from physground.errors import ValidationError
    from physground.scenario import get_scenario

    cls = type(get_scenario("rigid/bounce"))
    bad = type("Bad", (cls,), {"laws": frozenset({"balistic"}), "name": "rigid/bad"})
    with pytest.raises(ValidationError, match="did you mean 'ballistic'"):
        bad()
