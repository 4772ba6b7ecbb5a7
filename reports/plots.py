"""Figures for reports: error against horizon, and conserved quantities over time.

Every function returns PNG bytes (inlined into the HTML report, written beside the
Markdown report) or None when there is nothing to draw.

Conserved quantities are computed from the saved samples (rollout 0 of each scenario and
split; `physground.benchmarks.tasks.save_sample`) with the shared torch functions of
`physground.metrics.quantities`, on the truth (context and horizon) and on each model's
prediction (horizon), by the same method on both sides:

- energy ``E = K + U`` [J] (positions, velocities or finite differences, masses, gravity);
- linear momentum magnitude ``|sum_b m_b v_b|`` [kg m/s];
- velocity divergence RMS [1/s] of 2-D fields (``velocity [T,H,W,2]`` and grid spacing);
- mean absolute edge strain ``|l / l0 - 1|`` [1] of cloth (``edges``, ``rest_length``);
- total density ``sum rho`` (mass of smoke) [arbitrary units].
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SPLIT_STYLE = {"test_id": "-", "test_ood": "--", "train": ":"}


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def model_colors(models: list[str]) -> dict[str, Any]:
    """One colour per model for the whole report: the sorted list of every model of the run
    indexes a qualitative palette, so a model has the same colour in every figure."""
    cmap = plt.get_cmap("tab10")
    return {m: cmap(i % 10) for i, m in enumerate(sorted(set(models)))}


def metric_axis_label(metric: str) -> str:
    """``name [unit] (lower is better)`` from the metric registry."""
    from physground.metrics.registry import METRICS

    try:
        entry = METRICS.get(metric)
    except KeyError:
        return metric
    unit = f" [{entry.unit}]" if entry.unit else ""
    better = "higher" if entry.higher_is_better else "lower"
    return f"{metric}{unit} ({better} is better)"


def metric_scale(metric: str, values: np.ndarray) -> str:
    """``log`` for an error that spans two decades or more (all positive), else ``linear``:
    bounded scores (IoU, SSIM, PSNR in dB) and narrow ranges read best on a linear axis."""
    from physground.metrics.registry import METRICS

    try:
        higher = METRICS.get(metric).higher_is_better
    except KeyError:
        higher = False
    finite = values[np.isfinite(values)]
    if higher or finite.size == 0 or (finite <= 0).any():
        return "linear"
    return "log" if finite.max() / finite.min() >= 100.0 else "linear"


def _plain_numbers(ax: Any) -> None:
    """No offset notation ("1e-13+7.49e-1"): tick labels show the values themselves."""
    from matplotlib.ticker import ScalarFormatter

    if ax.get_yscale() == "linear":
        formatter = ScalarFormatter(useOffset=False)
        formatter.set_powerlimits((-3, 4))
        ax.yaxis.set_major_formatter(formatter)


def horizon_figure(results: pd.DataFrame, scenario: str,
                   colors: dict[str, Any] | None = None) -> Any:
    """Mean of each metric over rollouts against horizon step, one panel per metric, one
    colour per model (``colors``, default `model_colors` of these rows), solid for test_id
    and dashed for test_ood (failed rows excluded). None when there is nothing to draw."""
    from physground.metrics.scores import model_rows

    results = model_rows(results)
    failure = results["failure"].astype(object).where(results["failure"].notna(), "")
    data = results[(results["scenario"] == scenario) & (failure.astype(str) == "")]
    if data.empty:
        return None
    metrics = sorted(data["metric"].unique())
    colors = colors or model_colors(list(data["model"].unique()))
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.0 * cols, 8.0), 2.9 * rows + 0.6),
                             squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        part = data[data["metric"] == metric]
        for (model, split), curve in part.groupby(["model", "split"], sort=True):
            mean = curve.groupby("horizon")["value"].mean()
            ax.plot(mean.index, mean.to_numpy(), SPLIT_STYLE.get(split, "-"),
                    color=colors[model], marker=".", ms=3, lw=1.2,
                    label=f"{model} ({split})")
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("horizon step", fontsize=8)
        ax.set_ylabel(metric_axis_label(metric), fontsize=7)
        ax.set_yscale(metric_scale(metric, part["value"].to_numpy(dtype=np.float64)))
        _plain_numbers(ax)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    legend: dict[str, Any] = {}
    for ax in axes.flat:  # every (model, split) once, whichever panel drew it
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    labels = sorted(legend)
    fig.legend([legend[k] for k in labels], labels, loc="lower center",
               ncol=min(4, len(labels)), fontsize=7, frameon=False)
    fig.suptitle(f"{scenario}: metrics against horizon (solid test_id, dashed test_ood)",
                 fontsize=10)
    legend_rows = -(-len(labels) // 4)
    fig.tight_layout(rect=(0, min(0.4, 0.22 * legend_rows / fig.get_figheight()), 1, 0.95))
    return fig


def horizon_curves(results: pd.DataFrame, scenario: str,
                   colors: dict[str, Any] | None = None) -> bytes | None:
    """`horizon_figure` as PNG bytes (None when there is nothing to draw)."""
    fig = horizon_figure(results, scenario, colors)
    return None if fig is None else _png(fig)


def write_png(data: bytes, path: Path) -> Path:
    from physground.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


# ------------------------------------------------------------------ conserved quantities


def _tensor(array: Any) -> Any:
    import torch

    return torch.as_tensor(np.asarray(array, dtype=np.float64))


def _positions(sample: dict[str, Any]) -> tuple[str | None, np.ndarray | None]:
    for name in ("pos", "x"):
        if name in sample["states"]:
            return name, np.asarray(sample["states"][name], dtype=np.float64)
    return None, None


def _velocity(sample: dict[str, Any], truth: dict[str, Any]) -> np.ndarray | None:
    """Stored velocity, else finite differences over (truth context + this trajectory)."""
    from physground.metrics.quantities import finite_difference_velocity

    name, pos = _positions(sample)
    if name is None:
        return None
    vel_name = {"pos": "vel", "x": "v"}[name]
    if vel_name in sample["states"] and vel_name in truth["states"]:
        return np.asarray(sample["states"][vel_name], dtype=np.float64)
    if sample is truth:
        full = pos
        start = 0
    else:
        context = truth["context"]
        full = np.concatenate([truth["states"][name][:context], pos], axis=0)
        start = context
    return finite_difference_velocity(_tensor(full), float(truth["dt"])).numpy()[start:]


def _energy(sample: dict[str, Any], truth: dict[str, Any]) -> np.ndarray | None:
    from physground.metrics.quantities import total_energy

    static = truth["static"]
    mass = static.get("mass", static.get("particle_mass"))
    name, pos = _positions(sample)
    if name is None or mass is None or "gravity" not in static:
        return None
    vel = _velocity(sample, truth)
    return total_energy(_tensor(pos), _tensor(vel), _tensor(mass),
                        _tensor(static["gravity"])).numpy()


def _momentum(sample: dict[str, Any], truth: dict[str, Any]) -> np.ndarray | None:
    from physground.metrics.quantities import linear_momentum

    static = truth["static"]
    mass = static.get("mass", static.get("particle_mass"))
    if mass is None:
        return None
    vel = _velocity(sample, truth)
    if vel is None:
        return None
    return np.linalg.norm(linear_momentum(_tensor(vel), _tensor(mass)).numpy(), axis=-1)


def _spacing(static: dict[str, Any]) -> Any:
    for key in ("spacing", "grid_spacing", "dx", "cell_size", "h"):
        if key in static:
            value = np.asarray(static[key], dtype=np.float64).reshape(-1)
            return float(value[0]) if value.size == 1 else (float(value[0]), float(value[1]))
    return None


def _divergence(sample: dict[str, Any], truth: dict[str, Any]) -> np.ndarray | None:
    from physground.metrics.quantities import divergence_2d

    velocity = sample["states"].get("velocity")
    spacing = _spacing(truth["static"])
    if velocity is None or spacing is None or np.ndim(velocity) != 4:
        return None
    div = divergence_2d(_tensor(velocity), spacing).numpy()
    return np.sqrt((div.reshape(div.shape[0], -1) ** 2).mean(-1))


def _strain(sample: dict[str, Any], truth: dict[str, Any]) -> np.ndarray | None:
    import torch

    from physground.metrics.quantities import edge_strain

    static = truth["static"]
    if "x" not in sample["states"] or "edges" not in static or "rest_length" not in static:
        return None
    strain = edge_strain(_tensor(sample["states"]["x"]),
                         torch.as_tensor(np.asarray(static["edges"], dtype=np.int64)),
                         _tensor(static["rest_length"])).numpy()
    return np.abs(strain).mean(-1)


def _mass_of_field(sample: dict[str, Any], truth: dict[str, Any]) -> np.ndarray | None:
    density = sample["states"].get("density")
    if density is None or np.ndim(density) < 3:
        return None
    return np.asarray(density, dtype=np.float64).reshape(np.shape(density)[0], -1).sum(-1)


QUANTITIES: dict[str, tuple[str, Callable[[dict, dict], np.ndarray | None]]] = {
    "energy": ("energy E = K + U [J]", _energy),
    "momentum": ("momentum |p| [kg m/s]", _momentum),
    "divergence": ("divergence RMS [1/s]", _divergence),
    "strain": ("mean |edge strain| [1]", _strain),
    "density": ("total density [1]", _mass_of_field),
}
# A conserved quantity's axis spans at least this fraction of its magnitude, so that
# round-off (1e-13 of it) is drawn as the flat line it is and not as a swing.
MIN_RELATIVE_RANGE = 1e-3


def conserved_quantities(truth: dict[str, Any], predictions: dict[str, dict[str, Any]]
                         ) -> dict[str, dict[str, np.ndarray]]:
    """``{quantity: {"truth": [T], model: [H]}}`` for every quantity the truth supports."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, (_, fn) in QUANTITIES.items():
        try:
            base = fn(truth, truth)
        except Exception:  # noqa: BLE001 - a quantity the data cannot support is skipped
            base = None
        if base is None or not np.isfinite(base).any():
            continue
        series = {"truth": base}
        for model, sample in predictions.items():
            if sample["info"].get("failure"):
                continue
            try:
                values = fn(sample, truth)
            except Exception:  # noqa: BLE001 - e.g. a model without the needed states
                values = None
            if values is not None:
                series[model] = values
        out[key] = series
    return out


def _minimum_range(ax: Any, values: list[np.ndarray]) -> None:
    data = np.concatenate([v[np.isfinite(v)] for v in values])
    if data.size == 0:
        return
    lo, hi = float(data.min()), float(data.max())
    need = MIN_RELATIVE_RANGE * max(abs(lo), abs(hi), 1e-12)
    if hi - lo < need:
        mid = 0.5 * (lo + hi)
        ax.set_ylim(mid - need / 2, mid + need / 2)


def conservation_figure(title: str, truth: dict[str, Any],
                        predictions: dict[str, dict[str, Any]],
                        colors: dict[str, Any] | None = None) -> Any:
    """Conserved quantities of truth (black) and models over time; the context is shaded.
    None when the truth supports no conserved quantity."""
    series = conserved_quantities(truth, predictions)
    if not series:
        return None
    dt, context = truth["dt"], truth["context"]
    models = sorted(predictions)
    colors = colors or model_colors(models)
    fig, axes = plt.subplots(1, len(series), figsize=(4.0 * len(series), 2.8), squeeze=False)
    for ax, (key, values) in zip(axes[0], series.items(), strict=True):
        t_truth = np.arange(len(values["truth"])) * dt
        ax.axvspan(0, (context - 1) * dt, color="0.9", lw=0)
        ax.plot(t_truth, values["truth"], color="black", lw=2, label="truth")
        for model in models:
            if model in values:
                t = (context + np.arange(len(values[model]))) * dt
                ax.plot(t, values[model], color=colors[model], lw=1.2, label=model)
        name, _, unit = QUANTITIES[key][0].rpartition(" [")
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(f"{name.split(' ')[0]} [{unit}", fontsize=8)
        ax.set_xlabel("time [s] (grey: context)", fontsize=8)
        _plain_numbers(ax)
        _minimum_range(ax, list(values.values()))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def conservation_plot(title: str, truth: dict[str, Any],
                      predictions: dict[str, dict[str, Any]],
                      colors: dict[str, Any] | None = None) -> bytes | None:
    """`conservation_figure` as PNG bytes (None when there is nothing to draw)."""
    fig = conservation_figure(title, truth, predictions, colors)
    return None if fig is None else _png(fig)
