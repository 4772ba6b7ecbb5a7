import math

import numpy as np
import pytest

from physground.errors import ValidationError
from physground.params import Param, ParamSpace, Uniform
from physground.scenario import SCENARIOS

P = (Param("mass", "kg", 0.0, 10.0), Param("speed", "m/s", 0.0, 100.0))


@pytest.mark.parametrize("name", SCENARIOS.names())
def test_ood_samples_lie_outside_training_ranges(name):
    """Every test_ood draw has at least one parameter outside the training range, and every
    moved parameter's OOD interval is disjoint from training (checked at construction)."""
    scenario = SCENARIOS.get(name)
    space = scenario.param_space
    moved = space.ood_params()
    assert moved
    for seed in range(50):
        params = space.sample("test_ood", np.random.default_rng(seed))
        assert not space.in_training_range(params)
        for n in moved:
            lo, hi = space.splits["train"][n].bounds
            assert not lo <= params[n] <= hi
        id_params = space.sample("test_id", np.random.default_rng(seed))
        assert space.in_training_range(id_params)


def test_overlapping_ood_range_is_rejected():
    with pytest.raises(ValidationError, match="overlaps the training range"):
        ParamSpace.from_train(P, {"mass": Uniform(1, 2), "speed": Uniform(1, 2)},
                              {"mass": Uniform(1.5, 3)})


def test_split_outside_physical_range_is_rejected():
    with pytest.raises(ValidationError, match="'mass' = -1 kg is outside its physical range"):
        ParamSpace.from_train(P, {"mass": Uniform(-1, 2), "speed": Uniform(1, 2)},
                              {"speed": Uniform(3, 4)})


def test_validate_rejects_bad_values_and_names():
    space = ParamSpace.from_train(P, {"mass": Uniform(1, 2), "speed": Uniform(1, 2)},
                                  {"speed": Uniform(3, 4)})
    with pytest.raises(ValidationError, match="outside its physical range"):
        space.validate({"mass": 11.0, "speed": 1.0})
    with pytest.raises(ValidationError, match="outside its physical range"):
        space.validate({"mass": math.nan, "speed": 1.0})
    with pytest.raises(KeyError, match="did you mean 'mass'"):
        space.validate({"mas": 1.0, "speed": 1.0})
    with pytest.raises(ValidationError, match="missing parameters"):
        space.validate({"mass": 1.0})
