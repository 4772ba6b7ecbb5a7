"""`state-gnn` on Newton sand: grains as entities, columns of different grain counts.

Needs the optional ``newton`` extra (installed in CI); tiny columns keep it cheap.
"""

import numpy as np
import pytest
import torch
from test_learned_fixtures import one_torch_thread  # noqa: F401

pytest.importorskip("newton")

from physground.learned.configuration_state_gnn import StateGNNConfig  # noqa: E402
from physground.learned.entities import (  # noqa: E402
    entity_counts,
    entity_states,
    entity_static,
    pad_entities,
)
from physground.learned.modeling_state_gnn import proximity_edges  # noqa: E402
from physground.learned.training import TrainConfig, train  # noqa: E402
from physground.observation import observe  # noqa: E402
from physground.scenario import get_scenario  # noqa: E402

TINY = {"num_frames": 8, "render": False, "voxel_size": 0.04, "width": 0.04,
        "min_cells": 1}


@pytest.fixture(scope="module")
def columns():
    """Two columns of different heights: 50 and 80 grains."""
    scenario = get_scenario("granular/column_collapse", **TINY)
    params = [{"friction_angle": 30.0, "density": 1500.0, "aspect_ratio": a} for a in (1.0, 1.5)]
    return scenario.generate(params, [0, 1], "train")


def test_grains_are_entities_with_neighbour_edges(columns):
    """Padded to the larger column, the smaller one's padded grains are absent, pinned and
    massless, and grains are linked to their lattice neighbours (1.5 spacings) but never to
    a padded one."""
    counts = [r.states["x"].shape[1] for r in columns]
    assert counts[0] < counts[1] == max(entity_counts(columns))
    static = entity_static(columns)
    assert static.present is not None and not static.present[0, counts[0]:].any()
    assert static.pinned[0, counts[0]:].all() and not static.pinned[0, :counts[0]].any()
    assert float(static.mass[0, counts[0]:].abs().sum()) == 0.0
    assert static.has_box  # the channel walls and the ground, from the `domain` static
    x = torch.stack([pad_entities(entity_states(r)[0], counts[1])[0] for r in columns])
    edges = proximity_edges(x, static, StateGNNConfig())
    assert len(edges) > 0
    small = edges[edges[:, 0] == 0]
    assert int(small[:, 1:].max()) < counts[0]  # no edge touches a padded grain
    spacing = 0.02
    gap = (x[edges[:, 0], edges[:, 1]] - x[edges[:, 0], edges[:, 2]]).norm(dim=-1)
    assert float(gap.max()) <= 1.5 * spacing + 1e-6


def test_a_few_training_steps_lower_the_loss(columns):
    """30 steps on the two columns halve the data loss; the model then predicts finite
    states for a column of yet another grain count."""
    config = TrainConfig(steps=30, lr=3e-3, lr_final=3e-3, batch_size=4, progress=False,
                         log_every=1, model_config={"hidden": 32, "layers": 1})
    model = train(config, columns)
    first = np.mean([h["data"] for h in model.history[:3]])
    last = np.mean([h["data"] for h in model.history[-3:]])
    print(f"data loss {first:.3g} -> {last:.3g}")
    assert last < 0.5 * first, (first, last)

    (other,) = get_scenario("granular/column_collapse", **TINY).generate(
        [{"friction_angle": 30.0, "density": 1500.0, "aspect_ratio": 0.6}], [2], "train")
    prediction = model.predict(observe(other, 4), 4)
    assert prediction.states["x"].shape == (4, other.states["x"].shape[1], 3)
    assert np.isfinite(prediction.states["x"]).all()
