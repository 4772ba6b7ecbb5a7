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

