"""The review figures of a study: paths, curves and Optuna's views, drawn from its numbers.

Returned to the caller; nothing here saves or shows them. ``review`` computes what they show;
``plots`` sets their size and smallest font.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from pipeline import plots
from pipeline.config import Select
from pipeline.plots import SMALL, WIDTH, figure, log_x
from pipeline.selection import picks

PENALTY_COLORS = {"l1": "tab:blue", "l2": "tab:orange", "elasticnet": "tab:green"}
MAX_BINS = 12  # points per penalty on the validation curve, however many trials
PATH_PANEL = 2.4  # inches: the height of a penalty's axes on the path figure
LINE_EM = 1.2  # a name's height on the path figure, in ems: 16 fit beside a panel
LABEL_CHARS = 18  # a longer feature name is shortened in the middle on the path figure
STAR = {"marker": "*", "markersize": 14, "color": "gold", "markeredgecolor": "black"}
TEXT = {"fontsize": SMALL, "clip_on": False}  # a name beside the axes
FAINT = {"s": 10, "alpha": 0.3, "linewidths": 0}  # one trial among many


def _mark_alpha(ax, alpha: float) -> None:
    ax.axvline(alpha, color="0.2", linestyle="--", linewidth=1, label=f"chosen α={alpha:.3g}")


def regularization_path_plot(
    paths: dict[str, pd.DataFrame], *, chosen: tuple[str, float], max_features: int = 16
) -> Figure:
    """Coefficients against alpha (log scale), a panel per penalty, a line per feature.

    ``paths`` maps a panel label (its first word the penalty) to a frame indexed by alpha
    with a column per feature. The features with the largest coefficients are drawn, each
    in its own colour and line style and named (the largest 16, as many as fit) at the
    weakly penalized end of its line (alpha decreases to the right); the rest are counted
    in the title. The panels are stacked, sharing the alpha axis; the chosen alpha is
    marked on its penalty's.
    """
    labels = list(paths)
    peak = pd.concat([p.abs().max() for p in paths.values()], axis=1).max(axis=1)
    top = list(peak.sort_values(ascending=False, kind="stable").index[:max_features])
    styles = dict(zip(top, plots.feature_styles(len(top)), strict=True))
    fig, axes = _path_axes(len(labels))
    for ax, label in zip(axes, labels, strict=True):
        path = paths[label]
        for feature in top:
            color, style = styles[feature]
            ax.plot(path.index, path[feature], color=color, linestyle=style, label=str(feature))
        ax.axhline(0, color="0.6", linewidth=0.8)
        ax.set_title(label, fontsize="medium", loc="left")
        ax.set_ylabel("coefficient (standardized)")
        ax.tick_params(labelsize=SMALL)
        if label.split()[0] == chosen[0]:
            _mark_alpha(ax, chosen[1])
            ax.legend(handles=ax.get_lines()[-1:], loc="upper left", fontsize=SMALL)
    alphas = np.concatenate([p.index.to_numpy(dtype=float) for p in paths.values()])
    log_x(axes[0])
    axes[0].set_xlim(alphas.max(), alphas.min())  # the weakest penalty on the right
    axes[-1].set_xlabel("alpha (log scale, decreasing: weaker penalty to the right)")
    for ax, label in zip(axes, labels, strict=True):  # the shared y limits are final now
        _label_line_ends(ax, paths[label][top], styles, axes_inches=PATH_PANEL)
    title = "Regularization path: L1 sets coefficients to exactly zero, L2 only shrinks them"
    if len(peak) > len(top):
        title += f"\n(largest {len(top)} features shown, {len(peak) - len(top)} more hidden)"
    fig.suptitle(title, fontsize="medium")
    return fig


def _path_axes(n_panels: int) -> tuple[Figure, list]:
    """Stacked panels sharing both axes, margins set in inches (a gutter on the right for
    the names), so no layout pass measures every name."""
    top, bottom, gap = 0.8, 0.6, 0.4
    height = top + bottom + n_panels * PATH_PANEL + (n_panels - 1) * gap
    fig = Figure(figsize=(WIDTH, height), dpi=plots.DPI)
    gutter = 0.3 + plots.INCH_PER_CHAR * LABEL_CHARS
    box = (0.8 / WIDTH, bottom / height, 1 - gutter / WIDTH, 1 - top / height)  # l, b, r, t
    fig.subplots_adjust(*box, hspace=gap / PATH_PANEL)
    return fig, list(fig.subplots(n_panels, 1, sharex=True, sharey=True, squeeze=False)[:, 0])


def _label_line_ends(ax, path: pd.DataFrame, styles: dict, *, axes_inches: float) -> None:
    """Name the first lines (as many as fit) right of the axes, level with their ends at the
    smallest alpha (the axes' right edge), spread apart so that no two names overlap; a
    short leader in the line's colour joins each."""
    fit = int(axes_inches / (LINE_EM * SMALL / 72))
    end = path.iloc[:, :fit].loc[path.index.min()].sort_values(kind="stable")
    low, high = ax.get_ylim()
    line = (high - low) * (LINE_EM * SMALL / 72) / axes_inches  # a line of text, in data units
    gap = float(np.clip((high - low) / max(len(end) - 1, 1), line, 1.3 * line))
    placed = plots.spread(end.to_numpy(), gap=gap, low=low, high=high)
    beside = ax.get_yaxis_transform()  # x in axes fractions, y in data units
    colors = [styles[feature][0] for feature in end.index]
    leaders = [
        [(1.0, y), (1.02, label_y), (1.03, label_y)] for y, label_y in zip(end, placed, strict=True)
    ]
    ax.add_collection(
        LineCollection(leaders, colors=colors, linewidths=0.8, transform=beside, clip_on=False),
        autolim=False,
    )
    for feature, label_y, color in zip(end.index, placed, colors, strict=True):
        ink = tuple(0.75 * c for c in to_rgb(color))  # darker: light hues read badly as text
        name = plots.shorten(str(feature), LABEL_CHARS)
        ax.text(1.035, label_y, name, transform=beside, va="center", color=ink, **TEXT)


def sparsity_plot(paths: dict[str, pd.DataFrame], *, chosen: tuple[str, float]) -> Figure:
    """Number of non-zero coefficients against alpha, one line per penalty."""
    fig = figure()
    ax = fig.add_subplot()
    for label, path in paths.items():
        nonzero = (path != 0).sum(axis=1)
        color = PENALTY_COLORS.get(label.split()[0])
        ax.plot(path.index, nonzero, marker=".", label=label, color=color)
    _mark_alpha(ax, chosen[1])
    log_x(ax)
    ax.set_xlabel("alpha (log scale)")
    ax.set_ylabel("non-zero coefficients")
    ax.set_ylim(bottom=0)
    ax.set_title("Sparsity: how many features each penalty keeps", fontsize="medium")
    ax.legend(fontsize=SMALL)
    return fig


def validation_curve_plot(
    trials: pd.DataFrame, *, chosen: tuple[str, float], scoring: str
) -> Figure:
    """CV and training score against alpha, a panel per penalty; under them, a zoom on the
    best trial's penalty near the best. Each trial is a faint dot; each of at most
    ``MAX_BINS`` bins of consecutive alphas (equal counts) is its mean CV score ± the mean
    SE over folds (std without a ``cv_se`` column), and its mean training score. The chosen
    alpha, the best trial, the one-SE threshold and pick (given ``n_nonzero``) are marked.
    """
    penalties = [p for p in PENALTY_COLORS if p in set(trials["penalty"])]
    points, threshold = _marks(trials)
    fig = figure(height=7.4)
    grid = fig.add_gridspec(2, len(penalties), height_ratios=(3, 2))
    axes = []
    for i, penalty in enumerate(penalties):
        ax = fig.add_subplot(grid[0, i], sharey=axes[0] if axes else None)
        rows = trials[trials["penalty"] == penalty]
        _scores_panel(ax, rows, points, threshold, chosen)
        ax.set_title(f"{penalty} ({len(rows)} trials)", fontsize="medium")
        ax.tick_params(labelleft=not axes)
        axes.append(ax)
    axes[0].set_ylabel(f"{scoring} (higher is better)")
    zoom = fig.add_subplot(grid[1, :])
    _zoom_panel(zoom, trials, points, threshold, chosen)
    zoom.set_ylabel(scoring)
    legend = {}
    for ax in [*axes, zoom]:
        handles, names = ax.get_legend_handles_labels()
        legend.update({n: h for h, n in zip(handles, names, strict=True) if n not in legend})
    fig.legend(
        list(legend.values()), list(legend), loc="outside lower center", ncols=2, fontsize=SMALL
    )
    fig.suptitle("Validation curve: too little and too much regularization", fontsize="medium")
    return fig


def _scores_panel(ax, rows: pd.DataFrame, points: list, threshold: float | None, chosen) -> None:
    """One penalty's trials and alpha bins against log alpha, with the marks that fall on it."""
    penalty = rows["penalty"].iloc[0]
    _curve_panel(ax, rows, PENALTY_COLORS[penalty])
    for row, style in points:
        if row["penalty"] == penalty:
            ax.plot(row["alpha"], row["cv_score"], linestyle="none", zorder=4, **style)
    if threshold is not None:
        ax.axhline(threshold, color="0.3", linestyle=":", linewidth=1, label="best − 1 SE")
    if penalty == chosen[0]:
        _mark_alpha(ax, chosen[1])
    log_x(ax)
    ax.set_xlabel("alpha (log scale)")
    ax.tick_params(labelsize=SMALL)


def _zoom_panel(ax, trials: pd.DataFrame, points: list, threshold: float | None, chosen) -> None:
    """The best trial's penalty around the alphas scoring within 3 SE of the best, binned
    anew; the score axis from 4 SE below the best to 2 SE above it."""
    best = points[0][0]
    rows = trials[trials["penalty"] == best["penalty"]]
    scale = _noise(best, rows["cv_score"])
    near = rows.loc[rows["cv_score"] >= best["cv_score"] - 3 * scale, "alpha"]
    low, high = near.min() / 1.5, near.max() * 1.5
    _scores_panel(ax, rows[rows["alpha"].between(low, high)], points, threshold, chosen)
    ax.set_xlim(low, high)
    ax.set_ylim(best["cv_score"] - 4 * scale, best["cv_score"] + 2 * scale)
    what = "SE over folds" if scale == best.get("cv_se") else "std over folds"
    title = f"Near the best: {best['penalty']} trials within 3 {what} of the best CV score"
    ax.set_title(title, fontsize="medium")


def _noise(best: pd.Series, scores: pd.Series) -> float:
    """The zoom's yardstick: the best trial's SE, else its std over folds, else a guess."""
    for column in ("cv_se", "cv_std"):
        if best.get(column, 0) > 0:
            return float(best[column])
    return float(scores.max() - scores.min()) / 20 or 1.0


def alpha_bins(alpha: pd.Series, max_bins: int = MAX_BINS) -> np.ndarray:
    """Each trial's bin: at most ``max_bins`` bins of consecutive distinct alphas, with equal
    numbers of them (a bin per alpha when there are few)."""
    values, codes = np.unique(alpha.to_numpy(dtype=float), return_inverse=True)
    return codes * min(len(values), max_bins) // len(values)


def _curve_panel(ax, rows: pd.DataFrame, color: str) -> None:
    """The trials as faint dots; their alpha bins as a line of mean CV scores with error
    bars, and a grey line of mean training scores."""
    error = "cv_se" if "cv_se" in rows else "cv_std"
    binned = rows.assign(log_alpha=np.log10(rows["alpha"]), bin=alpha_bins(rows["alpha"]))
    stats = binned.groupby("bin").agg(
        log_alpha=("log_alpha", "mean"),
        cv=("cv_score", "mean"),
        error=(error, "mean"),
        train=("train_score", "mean"),
    )
    x = 10 ** stats["log_alpha"].to_numpy()
    ax.scatter(rows["alpha"], rows["cv_score"], color=color, label="one trial's CV", **FAINT)
    ax.plot(
        x, stats["train"].to_numpy(float), "-", color="0.5", label="training folds (mean per bin)"
    )
    label = f"CV mean per alpha bin (± {'SE' if error == 'cv_se' else 'std'} over folds)"
    cv, bars = stats["cv"].to_numpy(float), stats["error"].to_numpy(float)
    ax.errorbar(x, cv, bars, fmt="o-", ms=4, color=color, capsize=2, label=label)


def _marks(trials: pd.DataFrame) -> tuple[list[tuple[pd.Series, dict]], float | None]:
    """The trials to mark, each with its marker style (the best; the one-SE pick where the
    frame has the columns its rule needs), and the one-SE threshold (or None)."""
    best = trials.loc[trials["cv_score"].idxmax()]
    label = f"best CV: trial {best['number']} ({best['cv_score']:.4g}"
    if not {"cv_se", "n_nonzero"} <= set(trials.columns):
        return [(best, {**STAR, "label": label + ")"})], None
    label += f" ± {best['cv_se']:.2g} SE)"
    pick = picks(trials)[Select.one_se]
    if pick.trial == best["number"]:
        return [(best, {**STAR, "label": label + ", also the one-SE pick"})], best[
            "cv_score"
        ] - best["cv_se"]
    row = trials.loc[trials["number"] == pick.trial].iloc[0]
    simple = {"marker": "D", "markersize": 8, "markerfacecolor": "white", "color": "black"}
    simple["label"] = f"one-SE pick: trial {pick.trial} ({pick.n_nonzero} non-zero)"
    return [(best, {**STAR, "label": label}), (row, simple)], best["cv_score"] - best["cv_se"]


def _scores_by_penalty(ax, trials: pd.DataFrame, *, x: str) -> None:
    """Each trial's CV score against ``x``, coloured by penalty; the worst 10% cut off."""
    for penalty, rows in trials.groupby("penalty"):
        color = PENALTY_COLORS.get(str(penalty))
        ax.scatter(rows[x], rows["cv_score"], s=18, label=penalty, color=color)
    low, high = trials["cv_score"].quantile(0.1), trials["cv_score"].max()
    pad = 0.05 * (high - low) + 1e-12
    ax.set_ylim(low - pad, high + pad)


def optimization_history_plot(trials: pd.DataFrame, *, scoring: str) -> Figure:
    """Each trial's CV score in order, coloured by penalty, with the best so far."""
    fig = figure()
    ax = fig.add_subplot()
    _scores_by_penalty(ax, trials, x="number")
    best = trials["cv_score"].cummax()
    ax.step(trials["number"], best, where="post", color="0.2", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"CV {scoring}")
    ax.set_title("Optimization history (worst 10% of trials cut off)", fontsize="medium")
    ax.legend(fontsize=SMALL)
    return fig


def importance_plot(importances: dict[str, float]) -> Figure:
    """Optuna's parameter importances as bars."""
    fig = figure(height=3.0)
    ax = fig.add_subplot()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance for the CV score (fANOVA)")
    ax.set_title("Parameter importances", fontsize="medium")
    return fig


def slice_plot(trials: pd.DataFrame, *, chosen: tuple[str, float], scoring: str) -> Figure:
    """CV score against alpha for every trial, coloured by penalty."""
    fig = figure()
    ax = fig.add_subplot()
    _scores_by_penalty(ax, trials, x="alpha")
    _mark_alpha(ax, chosen[1])
    log_x(ax)
    ax.set_xlabel("alpha (log scale)")
    ax.set_ylabel(f"CV {scoring}")
    ax.set_title("Slice: CV score over alpha, by penalty (worst 10% cut off)", fontsize="medium")
    ax.legend(fontsize=SMALL)
    return fig
