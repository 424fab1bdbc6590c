"""The review figures of a study: paths, curves and Optuna's views, drawn from its numbers.

Returned to the caller; nothing here saves or shows them. ``review`` computes what they show.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

PENALTY_COLORS = {"l1": "tab:blue", "l2": "tab:orange", "elasticnet": "tab:green"}


def _mark_alpha(ax, alpha: float) -> None:
    ax.axvline(alpha, color="0.2", linestyle="--", linewidth=1, label=f"chosen α={alpha:.3g}")


def regularization_path_plot(
    paths: dict[str, pd.DataFrame],
    *,
    chosen: tuple[str, float],
    max_features: int = 12,
) -> Figure:
    """Coefficients against alpha (log scale), one panel per penalty, one line per feature.

    ``paths`` maps a panel label (its first word the penalty) to a frame indexed by alpha
    with a column per feature. The features with the largest coefficients are drawn; the
    rest are counted under the figure. The chosen alpha is marked on its penalty's panel.
    """
    labels = list(paths)
    first = paths[labels[0]]
    peak = pd.concat([p.abs().max() for p in paths.values()], axis=1).max(axis=1)
    top = list(peak.sort_values(ascending=False).index[:max_features])
    hidden = first.shape[1] - len(top)
    fig = Figure(figsize=(4.6 * len(labels) + 1.8, 4.6), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(labels), sharey=True, squeeze=False)[0]
    colors = {f: f"C{i % 10}" for i, f in enumerate(top)}
    for ax, label in zip(axes, labels, strict=True):
        path = paths[label]
        for feature in top:
            ax.plot(path.index, path[feature], color=colors[feature], linewidth=1.4, label=feature)
        ax.set_xscale("log")
        ax.axhline(0, color="0.6", linewidth=0.8)
        ax.set_title(label, fontsize="medium")
        ax.set_xlabel("alpha (log scale)")
        if label.split()[0] == chosen[0]:
            _mark_alpha(ax, chosen[1])
    axes[0].set_ylabel("coefficient (standardized features)")
    handles, names = axes[0].get_legend_handles_labels()
    for ax in axes:
        h, n = ax.get_legend_handles_labels()
        if len(n) > len(names):
            handles, names = h, n
    fig.legend(handles, names, loc="outside right upper", fontsize="small")
    title = "Regularization path: L1 sets coefficients to exactly zero, L2 only shrinks them"
    if hidden:
        title += f"\n(largest {len(top)} features shown, {hidden} more hidden)"
    fig.suptitle(title, fontsize="medium")
    return fig


def sparsity_plot(paths: dict[str, pd.DataFrame], *, chosen: tuple[str, float]) -> Figure:
    """Number of non-zero coefficients against alpha, one line per penalty."""
    fig = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for label, path in paths.items():
        nonzero = (path != 0).sum(axis=1)
        color = PENALTY_COLORS.get(label.split()[0])
        ax.plot(path.index, nonzero, marker=".", label=label, color=color)
    _mark_alpha(ax, chosen[1])
    ax.set_xscale("log")
    ax.set_xlabel("alpha (log scale)")
    ax.set_ylabel("non-zero coefficients")
    ax.set_ylim(bottom=0)
    ax.set_title("Sparsity: how many features each penalty keeps", fontsize="medium")
    ax.legend(fontsize="small")
    return fig


def validation_curve_plot(trials: pd.DataFrame, *, chosen: tuple[str, float], scoring: str):
    """Training and CV score (± std across folds) against alpha, a panel per penalty.

    Drawn from the trials the search ran: where the curves part, the model overfits;
    where both fall, it underfits.
    """
    penalties = [p for p in PENALTY_COLORS if p in set(trials["penalty"])]
    fig = Figure(figsize=(4.6 * len(penalties) + 0.6, 4.6), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(penalties), sharey=True, squeeze=False)[0]
    for ax, penalty in zip(axes, penalties, strict=True):
        rows = trials[trials["penalty"] == penalty].sort_values("alpha")
        ax.plot(rows["alpha"], rows["train_score"], "-", color="0.5", label="training folds")
        ax.errorbar(
            rows["alpha"],
            rows["cv_score"],
            yerr=rows["cv_std"],
            fmt="o-",
            markersize=3,
            color=PENALTY_COLORS[penalty],
            capsize=2,
            label="CV (± std over folds)",
        )
        ax.set_xscale("log")
        ax.set_xlabel("alpha (log scale)")
        ax.set_title(f"{penalty} ({len(rows)} trials)", fontsize="medium")
        if penalty == chosen[0]:
            _mark_alpha(ax, chosen[1])
        ax.legend(fontsize="small")
    axes[0].set_ylabel(f"{scoring} (higher is better)")
    fig.suptitle("Validation curve: too little and too much regularization", fontsize="medium")
    return fig


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
    fig = Figure(figsize=(7.5, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    _scores_by_penalty(ax, trials, x="number")
    ax.step(
        trials["number"],
        trials["cv_score"].cummax(),
        where="post",
        color="0.2",
        label="best so far",
    )
    ax.set_xlabel("trial")
    ax.set_ylabel(f"CV {scoring}")
    ax.set_title("Optimization history (worst 10% of trials cut off)", fontsize="medium")
    ax.legend(fontsize="small")
    return fig


def importance_plot(importances: dict[str, float]) -> Figure:
    """Optuna's parameter importances as bars."""
    fig = Figure(figsize=(6, 3), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance for the CV score (fANOVA)")
    ax.set_title("Parameter importances", fontsize="medium")
    return fig


def slice_plot(trials: pd.DataFrame, *, chosen: tuple[str, float], scoring: str) -> Figure:
    """CV score against alpha for every trial, coloured by penalty."""
    fig = Figure(figsize=(7.5, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    _scores_by_penalty(ax, trials, x="alpha")
    _mark_alpha(ax, chosen[1])
    ax.set_xscale("log")
    ax.set_xlabel("alpha (log scale)")
    ax.set_ylabel(f"CV {scoring}")
    ax.set_title("Slice: CV score over alpha, by penalty (worst 10% cut off)", fontsize="medium")
    ax.legend(fontsize="small")
    return fig
