"""Figures a paper can use: checked on the matplotlib objects and GIF bytes themselves.

Units on every axis, a scale chosen per metric (linear for bounded ones), one colour per
model in every figure, no offset notation, a minimum relative range on conservation plots
(round-off is drawn flat), GIF strips at the true frame rate with a legend and colour bar,
and a red mark where a prediction leaves the view.
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from physground.reports import plots
from physground.reports.media import OFF_CANVAS, TILE, frame_durations_ms, strip_frames, strip_gif

MODELS = ["copy-last", "constant-velocity", "state-gnn"]


def results(metric_values: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    rows = []
    for metric, per_model in metric_values.items():
        for model, values in per_model.items():
            for h, value in enumerate(values):
                rows.append({"model": model, "scenario": "rigid/projectile", "split": "test_id",
                             "rollout": 0, "metric": metric, "horizon": h, "value": value,
                             "failure": ""})
    return pd.DataFrame(rows)


@pytest.fixture
def table() -> pd.DataFrame:
    steps = np.arange(1, 11, dtype=float)
    return results({
        "position_rmse": {"copy-last": 1e-4 * steps ** 3, "constant-velocity": 1e-5 * steps ** 2,
                          "state-gnn": 1e-3 * steps},
        "ssim": {m: 1.0 - 0.01 * i * steps for i, m in enumerate(MODELS)},
        "psnr": {m: 40.0 - i * steps for i, m in enumerate(MODELS)},
    })


def axes_by_title(fig) -> dict[str, object]:
    return {ax.get_title(): ax for ax in fig.axes if ax.get_title()}


def test_horizon_axes_carry_units_direction_and_per_metric_scale(table: pd.DataFrame) -> None:
    fig = plots.horizon_figure(table, "rigid/projectile", plots.model_colors(MODELS))
    axes = axes_by_title(fig)
    assert axes["position_rmse"].get_ylabel() == "position_rmse [m] (lower is better)"
    assert axes["psnr"].get_ylabel() == "psnr [dB] (higher is better)"
    assert axes["ssim"].get_ylabel() == "ssim [1] (higher is better)"
    assert axes["position_rmse"].get_yscale() == "log"  # errors spanning 4 decades
    assert axes["ssim"].get_yscale() == "linear" and axes["psnr"].get_yscale() == "linear"
    for ax in axes.values():
        assert ax.get_xlabel() == "horizon step"
    plt.close(fig)


def test_one_colour_per_model_across_figures(table: pd.DataFrame) -> None:
    colors = plots.model_colors(MODELS + ["reference"])
    assert len({colors[m] for m in colors}) == len(colors)
    first = plots.horizon_figure(table, "rigid/projectile", colors)
    # a second figure that lacks a model keeps everybody else's colour
    second = plots.horizon_figure(table[table["model"] != "copy-last"], "rigid/projectile",
                                  colors)
    for fig in (first, second):
        for ax in fig.axes:
            for line in ax.get_lines():
                model = line.get_label().split(" (")[0]
                assert line.get_color() == colors[model]
        plt.close(fig)
    # the palette is a function of the set of models, not of their order of appearance
    assert plots.model_colors(list(reversed(MODELS))) == plots.model_colors(MODELS)


def sample(states: dict[str, np.ndarray], dt: float = 0.1, context: int = 3) -> dict:
    static = {"mass": np.array([2.0]), "gravity": np.array([0.0, 0.0, -9.81])}
    return {"states": states, "static": static, "dt": dt, "context": context, "frames": None,
            "info": {}}


def test_conservation_axes_plain_numbers_and_minimum_range() -> None:
    t = np.arange(12) * 0.1
    vel = np.zeros((12, 1, 3))
    vel[:, 0, 0] = 3.0  # uniform motion on the ground: momentum 6 kg m/s, energy 9 J
    pos = np.stack([3.0 * t, 0 * t, 0 * t], axis=-1)[:, None, :]
    vel_noisy = vel + 1e-13 * np.sin(np.arange(12))[:, None, None]  # round-off only
    truth = sample({"pos": pos, "vel": vel_noisy})
    halved = {"states": {"pos": pos[3:], "vel": vel[3:] / 2}, "info": {}}
    fig = plots.conservation_figure("t", truth, {"halved": halved},
                                    plots.model_colors(["halved"]))
    axes = axes_by_title(fig)
    momentum = axes["momentum |p|"]
    assert momentum.get_ylabel() == "momentum [kg m/s]"
    assert axes["energy E = K + U"].get_ylabel() == "energy [J]"
    fig.canvas.draw()
    for ax in axes.values():
        assert ax.yaxis.get_offset_text().get_text() == ""  # no "1e-13+7.49" offsets
    lo, hi = momentum.get_ylim()
    assert lo <= 3.0 and hi >= 6.0  # the real halving is drawn in full
    plt.close(fig)
    flat = plots.conservation_figure("t", truth, {}, {})
    lo, hi = axes_by_title(flat)["momentum |p|"].get_ylim()
    assert hi - lo >= plots.MIN_RELATIVE_RANGE * 6.0 * 0.999  # round-off drawn flat
    plt.close(flat)


def test_gif_durations_follow_the_true_frame_rate() -> None:
    assert frame_durations_ms(6, 30.0) == [30, 40, 30, 30, 40, 30]
    assert sum(frame_durations_ms(90, 30.0)) == 3000  # 3 s of video take 3 s
    eight = frame_durations_ms(4, 8.0)  # 8 fps: 125 ms on average, in 10 ms units
    assert set(eight) == {120, 130} and sum(eight) == 500


def test_strip_gif_has_legend_colour_bar_and_true_timing() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(33, 24, 24, 3), dtype=np.uint8)
    truth = {"frames": frames, "states": {}, "context": 3, "dt": 1 / 30, "info": {}}
    preds = {"copy-last": {"frames": np.repeat(frames[2:3], 30, 0), "states": {}, "info": {}}}
    gif, labels = strip_gif(truth, preds, {"copy-last": (1.0, 0.0, 0.0)})
    assert labels == ["truth", "copy-last"]
    image = Image.open(io.BytesIO(gif))
    durations = []
    try:
        while True:
            durations.append(image.info["duration"])
            image.seek(image.tell() + 1)
    except EOFError:
        pass
    assert len(durations) == 30 and sum(durations) == 1000  # 30 frames at 30 fps: 1 s
    first = np.asarray(Image.open(io.BytesIO(gif)).convert("RGB"))
    header = first[:14]
    red = (header[..., 0] > 180) & (header[..., 1] < 80) & (header[..., 2] < 80)
    assert red[:, first.shape[1] // 2:].any()  # the model's name in its report colour
    footer = first[-8:-2].reshape(-1, 3)
    assert len(np.unique(footer, axis=0)) > 20  # the inferno colour bar


def test_prediction_leaving_the_view_is_marked() -> None:
    t = np.linspace(0.0, 1.0, 8)
    pos = np.stack([t, np.zeros_like(t), 1.0 - t * t], axis=-1)[:, None, :]
    truth = {"frames": None, "states": {"pos": pos}, "context": 3, "dt": 0.1,
             "info": {"camera": None}}
    gone = {"frames": None, "states": {"pos": pos[3:] + [50.0, 0.0, 0.0]}, "info": {}}
    strip, _ = strip_frames(truth, {"gone": gone})
    tile = strip[:, :TILE, TILE + 2:2 * TILE + 2]
    assert (tile == OFF_CANVAS).all(axis=-1).any(axis=(1, 2)).all()  # in every frame
    error = strip[:, TILE + 2:, TILE + 2:2 * TILE + 2]
    assert (error == OFF_CANVAS).all(axis=-1).any(axis=(1, 2)).all()
