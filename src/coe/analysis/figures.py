"""Figures of a routing analysis, drawn from the summary dict alone (:func:`coe.analysis.summary.summarize`),
so that they can be redrawn from the saved JSON; and the loss curves of a comparison (:func:`loss_curves`).

Figures are built on ``matplotlib.figure.Figure`` (the Agg canvas), not pyplot: no GUI backend, no global
state, safe in a process that draws other figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from coe.analysis.stats import coselection_lift

DPI = 100
LIFT_RANGE = 3.0  # log2 lift shown from -3 to 3 (1/8 to 8 times the independent rate)
LIFT_PRIOR = 1.0  # pseudo-count of the lift heatmaps: cells expecting few tokens are pulled towards 1
# Unused experts (NaN) in grey, apart from every value of the scales.
PROBABILITY_CMAP = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
LIFT_CMAP = matplotlib.colormaps["RdBu_r"].with_extremes(bad="lightgrey")
LIFT_NORM = TwoSlopeNorm(0, -LIFT_RANGE, LIFT_RANGE)
# Co-selection lift shows preferred successors only: white up to the independent rate, red above it. On a
# few thousand tokens most of the 63 x 63 cells expect a token or two, and a diverging scale paints that
# noise as strongly as the pairs that matter.
PREFERENCE_CMAP = matplotlib.colormaps["Reds"].with_extremes(bad="lightgrey")


def _save(fig: Figure, path: Path) -> Path:
    # Light PNG compression: the files grow by a fraction, saving takes a fraction of the time.
    fig.savefig(path, dpi=DPI, pil_kwargs={"compress_level": 1})
    return path


def _iter_label(layer: dict, t: int) -> str:
    return f"layer {layer['layer']}, iteration {t}"


def _log2_lift(lift: np.ndarray) -> np.ndarray:
    """log2 of a lift matrix (NaN: unused), clipped to the colour scale."""
    with np.errstate(divide="ignore"):
        return np.clip(np.log2(lift), -LIFT_RANGE, LIFT_RANGE)  # log2(0) = -inf is clipped to the floor


def _expert_ticks(ax, order: list[int], axis: str) -> None:
    """Expert ids (in display order) as tick labels: all when they fit, else every 2nd, 4th or 16th."""
    step = 1 if len(order) <= 32 else 2 if len(order) <= 64 else 4 if len(order) <= 128 else 16
    positions = list(range(0, len(order), step))
    labels = [str(order[p]) for p in positions]
    if axis == "x":
        ax.set_xticks(positions, labels, fontsize=7, rotation=90)
    else:
        ax.set_yticks(positions, labels, fontsize=7)


def plot_load(summary: dict[str, Any], path: Path) -> Path:
    """Tokens per expert, one panel per (layer, iteration), with the mean and the balance numbers."""
    layers = summary["layers"]
    C = summary["model"]["iterations"]
    fig = Figure(figsize=(max(8.0, 5.5 * C), 2.6 * len(layers)), layout="constrained")
    axes = fig.subplots(len(layers), C, squeeze=False)
    for row, layer in zip(axes, layers, strict=True):
        for ax, it in zip(row, layer["iterations"], strict=True):
            load = np.array(it["load"]["tokens_per_expert"])
            unused = it["load"]["unused_experts"]
            # One filled step artist, not N bar patches: the same picture, drawn several times faster.
            ax.stairs(load, np.arange(len(load) + 1) - 0.5, fill=True, color="tab:blue")
            ax.axhline(load.mean(), color="tab:red", lw=1, label="mean")
            balance = f"max/mean {it['load']['max_over_mean']:.2f}, CV {it['load']['cv']:.2f}"
            ax.set_title(
                f"{_iter_label(layer, it['iteration'])}: {balance}, unused {len(unused)}", fontsize=9
            )
            ax.set_xlabel("expert", fontsize=8)
            ax.set_ylabel("tokens", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.set_xlim(-1, len(load))
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Expert load over {summary['tokens']:,} tokens (each token counts once per chosen expert)")
    return _save(fig, path)


def plot_coselection(summary: dict[str, Any], path: Path) -> Path | None:
    """Iteration t -> t+1 co-selection per layer: P(expert j at t+1 | expert i at t) and its log2 lift over
    independence, in the summary's row and column orders. None for C = 1 (nothing to draw)."""
    panels = [(layer, t, tr) for layer in summary["layers"] for t, tr in enumerate(layer["transitions"])]
    if not panels:
        return None
    K = summary["model"]["top_k"]
    fig = Figure(figsize=(14, 6.6 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 2, squeeze=False)
    for (ax_p, ax_l), (layer, t, tr) in zip(axes, panels, strict=True):
        counts = np.array(tr["coselection"], dtype=float)  # (N, N)
        rows, cols = tr["row_order"], tr["col_order"]
        load = counts.sum(1) / K  # tokens that chose i at t
        conditional = np.where(load[:, None] > 0, counts / np.maximum(load, 1)[:, None], np.nan)
        lift = coselection_lift(torch.from_numpy(counts), prior=LIFT_PRIOR).numpy()
        a, b = t + 1, t + 2
        im = ax_p.imshow(
            conditional[np.ix_(rows, cols)], cmap=PROBABILITY_CMAP, aspect="auto", interpolation="nearest"
        )
        fig.colorbar(im, ax=ax_p, shrink=0.8, label=f"P(j at {b} | i at {a})")
        ax_p.set_title(f"layer {layer['layer']}: iteration {a} -> {b}, P(j | i)", fontsize=10)
        im = ax_l.imshow(
            np.clip(_log2_lift(lift[np.ix_(rows, cols)]), 0, LIFT_RANGE),
            cmap=PREFERENCE_CMAP,
            vmin=0,
            vmax=LIFT_RANGE,
            aspect="auto",
            interpolation="nearest",
        )
        bar = fig.colorbar(im, ax=ax_l, shrink=0.8, label="observed / independent (white: at most 1)")
        bar.set_ticks(range(int(LIFT_RANGE) + 1), labels=[f"{2**v}x" for v in range(int(LIFT_RANGE) + 1)])
        again = f"re-selection {tr['expert_reselection']:.3f} vs {tr['expert_reselection_expected']:.3f}"
        ax_l.set_title(f"layer {layer['layer']}: preferred successors ({again})", fontsize=10)
        for ax in (ax_p, ax_l):
            ax.set_xlabel(f"expert j at iteration {b} (grouped by who chooses them)", fontsize=9)
            ax.set_ylabel(f"expert i at iteration {a} (by preferred successor)", fontsize=9)
            _expert_ticks(ax, cols, "x")
            _expert_ticks(ax, rows, "y")
    fig.suptitle(f"Co-selection between iterations over {summary['tokens']:,} tokens (grey: unused expert)")
    return _save(fig, path)


def plot_reselection(summary: dict[str, Any], path: Path) -> Path | None:
    """Observed re-selection rates beside those expected under independence, per (layer, transition)."""
    rows = [(layer, t, tr) for layer in summary["layers"] for t, tr in enumerate(layer["transitions"])]
    if not rows:
        return None
    labels = [f"L{layer['layer']} {t + 1}->{t + 2}" for layer, t, _ in rows]
    x = np.arange(len(rows))
    fig = Figure(figsize=(max(6.0, 1.4 * len(rows) + 3), 3.8), layout="constrained")
    ax_e, ax_t = fig.subplots(1, 2)
    for ax, key, title in (
        (ax_e, "expert_reselection", "chosen experts chosen again"),
        (ax_t, "token_reselection", "tokens re-choosing any expert"),
    ):
        ax.bar(x - 0.2, [tr[key] for *_, tr in rows], 0.4, label="observed", color="tab:blue")
        ax.bar(
            x + 0.2, [tr[f"{key}_expected"] for *_, tr in rows], 0.4, label="independent", color="tab:gray"
        )
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylabel("rate", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle("Re-selection between consecutive iterations")
    return _save(fig, path)


def plot_entropy_and_gates(summary: dict[str, Any], path: Path) -> Path:
    """Per layer: distributions of each token's router entropy and of the gate weights, one line per
    iteration."""
    layers = summary["layers"]
    fig = Figure(figsize=(11, 2.8 * len(layers)), layout="constrained")
    axes = fig.subplots(len(layers), 2, squeeze=False)
    for (ax_h, ax_g), layer in zip(axes, layers, strict=True):
        for it in layer["iterations"]:
            for ax, key in ((ax_h, "router_entropy"), (ax_g, "gate_weights")):
                hist = it[key]["histogram"]
                counts = np.array(hist["counts"], dtype=float)
                ax.stairs(
                    counts / max(counts.sum(), 1),
                    hist["edges"],
                    label=f"iteration {it['iteration']} (mean {it[key]['mean']:.3f})",
                )
        for ax, key, label in (
            (ax_h, "router_entropy", "entropy of the router scores (nats)"),
            (ax_g, "gate_weights", "gate weight"),
        ):
            lows = [it[key]["min"] for it in layer["iterations"]]
            highs = [it[key]["max"] for it in layer["iterations"]]
            pad = 0.05 * max(max(highs) - min(lows), 1e-3)
            ax.set_xlim(min(lows) - pad, max(highs) + pad)  # zoom to the data, the bins span the full range
            ax.set_xlabel(label, fontsize=8)
            ax.set_ylabel("fraction", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=7)
        ax_h.set_title(
            f"layer {layer['layer']}: router entropy (max log N = "
            f"{layer['iterations'][0]['router_entropy']['max_possible']:.2f})",
            fontsize=10,
        )
        ax_g.set_title(f"layer {layer['layer']}: gate weights", fontsize=10)
    fig.suptitle("Router entropy and gate weights")
    return _save(fig, path)


def plot_specialisation(summary: dict[str, Any], path: Path) -> Path | None:
    """Which experts each kind of token goes to: log2 lift of (kind, expert) over independence, one panel
    per (layer, iteration). None when the summary has no specialisation."""
    layers = summary["layers"]
    if "specialisation" not in layers[0]["iterations"][0]:
        return None
    C = summary["model"]["iterations"]
    fig = Figure(figsize=(6.5 * C, 2.4 * len(layers) + 0.6), layout="constrained")
    axes = fig.subplots(len(layers), C, squeeze=False)
    for row, layer in zip(axes, layers, strict=True):
        for ax, it in zip(row, layer["iterations"], strict=True):
            spec = it["specialisation"]
            kinds = list(spec["tokens_per_kind"])
            counts = torch.tensor([spec["tokens_per_expert"][k] for k in kinds], dtype=torch.float64)
            lift = coselection_lift(counts, prior=LIFT_PRIOR).numpy()  # (kinds, N)
            im = ax.imshow(
                _log2_lift(lift), cmap=LIFT_CMAP, norm=LIFT_NORM, aspect="auto", interpolation="nearest"
            )
            ax.set_yticks(
                range(len(kinds)), [f"{k} ({spec['tokens_per_kind'][k]})" for k in kinds], fontsize=7
            )
            ax.set_xlabel("expert", fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
            ax.set_title(_iter_label(layer, it["iteration"]), fontsize=10)
    fig.colorbar(im, ax=axes, shrink=0.6, label="log2(observed / independent)")
    fig.suptitle("Specialisation: which experts each kind of token goes to (token counts in brackets)")
    return _save(fig, path)


def plot_paths(summary: dict[str, Any], path: Path) -> Path:
    """Distinct and effective routing paths per layer against the tokens seen and the paths possible."""
    layers = summary["layers"]
    names = [f"layer {layer['layer']}" for layer in layers]
    x = np.arange(len(layers))
    fig = Figure(figsize=(max(6.0, 1.6 * len(layers) + 3), 4), layout="constrained")
    ax = fig.subplots()
    ax.bar(x - 0.27, [layer["paths"]["distinct"] for layer in layers], 0.27, label="distinct paths")
    ax.bar(x, [layer["paths"]["effective"] for layer in layers], 0.27, label="effective paths (exp entropy)")
    ax.bar(
        x + 0.27,
        [layer["paths"]["distinct_expert_sets"] for layer in layers],
        0.27,
        label="distinct expert sets (order dropped)",
    )
    ax.axhline(summary["tokens"], color="black", ls="--", lw=1, label=f"tokens ({summary['tokens']:,})")
    ax.set_yscale("log")
    ax.set_ylim(1, 3 * summary["tokens"])  # bars from 1: a log axis cut at the data would exaggerate gaps
    ax.set_xticks(x, names)
    ax.set_ylabel("count")
    fig.legend(fontsize=7, loc="outside right upper")
    possible = summary["expert_paths"]
    ax.set_title(
        f"Routing paths used; possible: C(N,K)^C = {possible['possible']:.3g}, "
        f"matched MoE C(N,KC) = {possible['possible_moe_matched']:.3g}",
        fontsize=10,
    )
    return _save(fig, path)


def _zoom(ax, series: list[tuple[list[int], list[float]]], skip: float = 0.2) -> None:
    """A linear y range that fits every point after the first ``skip`` share of the steps (the steep start
    would otherwise flatten the part where the curves separate), with a margin."""
    last = max((x[-1] for x, _ in series if x), default=0)
    kept = [v for x, y in series for s, v in zip(x, y, strict=True) if s >= skip * last] or [
        v for _, y in series for v in y
    ]
    if not kept:
        return
    low, high = min(kept), max(kept)
    pad = 0.08 * max(high - low, 1e-3 * max(abs(high), 1.0))
    ax.set_ylim(low - pad, high + pad)


def _mark_ends(ax, ends: list[tuple[float, float, str]]) -> None:
    """Write each curve's final value beside its last point, in its colour, nudged apart when close."""
    low, high = ax.get_ylim()
    gap = 0.06 * (high - low)
    placed: list[float] = []
    for x, y, color in sorted(ends, key=lambda e: e[1]):
        at = max(y, placed[-1] + gap) if placed else y
        placed.append(at)
        ax.plot([x], [y], marker="o", color=color, ms=5)
        ax.annotate(
            f"{y:.3f}",
            (x, y),
            xytext=(8, (at - y) / (high - low) * ax.bbox.height * 72 / ax.figure.dpi),
            textcoords="offset points",
            va="center",
            color=color,
            fontsize=9,
            fontweight="bold",
            annotation_clip=False,
        )


def _smooth(values: list[float], window: int) -> np.ndarray:
    """A trailing moving average (the first points average what there is so far)."""
    v = np.asarray(values, dtype=float)
    if window <= 1 or len(v) == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    n = np.minimum(np.arange(1, len(v) + 1), window)
    return (c[1:] - c[np.arange(1, len(v) + 1) - n]) / n


def _split(records: list[dict[str, Any]], split: str) -> tuple[list[int], list[float]]:
    """The steps and losses of one split's records."""
    chosen = [m for m in records if m["split"] == split]
    return [m["step"] for m in chosen], [m["loss"] for m in chosen]


def seed_band(
    base: dict[int, float], others: list[tuple[list[int], list[float]]]
) -> tuple[list[int], list[float], list[float]]:
    """The spread of other runs of a baseline (its other seeds) about it: the steps where the baseline and
    every other run have a loss, and at each the lowest and highest of (other - baseline), 0 (the baseline
    itself) included."""
    at = [dict(zip(steps, losses, strict=True)) for steps, losses in others]
    steps = [s for s in sorted(base) if all(s in a for a in at)]
    gaps = [[0.0] + [a[s] - base[s] for a in at] for s in steps]
    return steps, [min(g) for g in gaps], [max(g) for g in gaps]


def curve_colors(n: int) -> list[tuple[float, float, float]]:
    """Colours for ``n`` curves: tab10's, or tab20's past as many curves as it has, without their greys (the
    seed band is grey); repeated only past tab20's eighteen."""
    for name in ("tab10", "tab20"):
        colors = [c for c in matplotlib.colormaps[name].colors if len(set(c)) > 1]
        if n <= len(colors):
            break
    return colors


def loss_curves(
    path: Path, curves: dict[str, list[dict[str, Any]]], band: dict[str, list[dict[str, Any]]] | None = None
) -> Path:
    """Validation loss (left), with two or more curves each one's validation loss minus the first's
    (middle), and training loss (right) against the step, one line per entry of ``curves``: label -> loss
    records ({"split", "step", "loss"}, as :func:`coe.train.metrics.read_metrics` gives them; records of
    other splits are left out). Linear axes zoomed past the first steps; final validation losses written
    at the ends of the curves; the training loss as a moving average over the logged points. ``band``:
    other runs of the first curve's configuration (its other seeds; label -> records), drawn in the middle
    panel as the shaded spread about it (:func:`seed_band`), the seed noise each gap is read against; with
    one curve there is no middle panel, and the band is not drawn."""
    diff = len(curves) > 1
    beside = len(curves) > 6  # one legend beside the panels, which it would cover
    fig = Figure(figsize=((16 if diff else 12) + 2.5 * beside, 4.8), layout="constrained")
    axes = fig.subplots(1, 3 if diff else 2)
    ax_val, ax_train = axes[0], axes[-1]
    colors = curve_colors(len(curves))
    val = {label: _split(ms, "val") for label, ms in curves.items()}
    train = {label: _split(ms, "train") for label, ms in curves.items()}
    ends = []
    for i, (label, (steps, losses)) in enumerate(val.items()):
        color = colors[i % len(colors)]
        ax_val.plot(steps, losses, marker="o", ms=3, color=color, label=label)
        if steps:
            ends.append((steps[-1], losses[-1], color))
    _zoom(ax_val, list(val.values()))
    _mark_ends(ax_val, ends)
    ax_val.set_title("validation loss (final values marked)")
    smoothed = {}
    for i, (label, (steps, losses)) in enumerate(train.items()):
        color = colors[i % len(colors)]
        smoothed[label] = (steps, list(_smooth(losses, max(1, len(losses) // 20))))
        ax_train.plot(steps, losses, color=color, alpha=0.2, lw=0.8)
        ax_train.plot(*smoothed[label], color=color, label=label)
    _zoom(ax_train, list(smoothed.values()))
    ax_train.set_title("training loss (faint: as logged; line: moving average)")
    shade = None  # the band's patch, for the legend beside the panels
    if diff:
        ax_diff = axes[1]
        first, (base_steps, base_losses) = next(iter(val.items()))
        base = dict(zip(base_steps, base_losses, strict=True))
        ax_diff.axhline(0, color=colors[0], lw=1, label=f"{first} (baseline)")
        if band:
            steps, low, high = seed_band(base, [_split(ms, "val") for ms in band.values()])
            shade = ax_diff.fill_between(
                steps, low, high, color="0.5", alpha=0.3, lw=0, label=f"spread of {', '.join(band)}"
            )
        for i, (label, (steps, losses)) in enumerate(list(val.items())[1:], start=1):
            points = [(s, v - base[s]) for s, v in zip(steps, losses, strict=True) if s in base]
            if points:
                xs, ys = zip(*points, strict=True)
                ax_diff.plot(xs, ys, marker="o", ms=3, color=colors[i % len(colors)], label=label)
                ax_diff.annotate(
                    f"{ys[-1]:+.3f}",
                    (xs[-1], ys[-1]),
                    xytext=(8, 0),
                    textcoords="offset points",
                    va="center",
                    color=colors[i % len(colors)],
                    fontsize=9,
                    fontweight="bold",
                    annotation_clip=False,
                )
        ax_diff.set_title(f"validation loss minus {first}'s (below 0: lower)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.set_ylabel("loss" if ax is not axes[1] or not diff else "loss difference")
        ax.grid(alpha=0.3)
        ax.margins(x=0.08)
    if beside:
        handles, labels = ax_val.get_legend_handles_labels()
        if shade is not None:
            handles.append(shade)
            labels.append(shade.get_label())
        fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    else:
        for ax in axes:
            ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    return path


FIGURES = {
    "load": plot_load,
    "coselection": plot_coselection,
    "reselection": plot_reselection,
    "entropy_gates": plot_entropy_and_gates,
    "specialisation": plot_specialisation,
    "paths": plot_paths,
}
"""Figure name -> function(summary, path) -> the path written, or None when it does not apply."""
