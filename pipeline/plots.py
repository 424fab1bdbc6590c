"""Figures, returned to the caller; nothing here saves or shows them."""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

_INCH_PER_CHAR = 0.075  # small font; lets margins be set without a costly layout pass


def coefficient_svg(coefs: pd.Series | pd.DataFrame, *, title: str, max_features: int = 30) -> str:
    """The coefficient plot as a small SVG document, for the child run of every trial.

    The same picture as ``coefficient_plot`` (bars sorted by magnitude, exact zeros marked
    with a cross, one panel per class) written directly: about a hundred times cheaper
    than drawing it with matplotlib, which matters when every trial logs one.
    """
    # NumPy, not pandas: this runs once per trial, and pandas' indexing cost most of it.
    table = coefs.to_frame() if isinstance(coefs, pd.Series) else coefs
    every = table.to_numpy(dtype=float)
    order = np.argsort(-np.abs(every).max(axis=1), kind="stable")[:max_features]
    shown = every[order]
    hidden = len(every) - len(shown)
    index = table.index.tolist()
    labels = [str(index[i]) for i in order]
    columns = table.columns.tolist()
    row, top = 18, 46
    left = min(220, 16 + 7 * max(len(s) for s in labels))
    panel = 520 if len(columns) == 1 else 240
    width = left + panel * len(columns) + 16
    height = top + row * len(shown) + 40 + (18 if hidden else 0) + (18 if len(columns) > 1 else 0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    for i, name in enumerate(labels):
        y = top + row * i + row / 2 + 4
        out.append(f'<text x="{left - 6}" y="{y}" text-anchor="end">{escape(name)}</text>')
    for j, column in enumerate(columns):
        x0 = left + panel * j + 8
        values = shown[:, j]
        scale = np.abs(values).max() or 1.0
        half = (panel - 24) / 2
        mid = x0 + half
        if len(columns) > 1:
            out.append(
                f'<text x="{mid}" y="{top - 8}" text-anchor="middle">{escape(str(column))}</text>'
            )
        for i, value in enumerate(values.tolist()):
            y = top + row * i
            if value == 0:
                cross = f'x="{mid}" y="{y + row / 2 + 4}" text-anchor="middle" fill="#666"'
                out.append(f"<text {cross}>×</text>")
                continue
            length = abs(value) / scale * half
            x = mid if value > 0 else mid - length
            color = "#1f77b4" if value > 0 else "#d62728"
            out.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{length:.1f}" height="{row - 6}" '
                f'fill="{color}"><title>{escape(labels[i])}: {value:.6g}</title></rect>'
            )
        bottom = top + row * len(values)
        out.append(f'<line x1="{mid}" y1="{top}" x2="{mid}" y2="{bottom}" stroke="#444"/>')
        out.append(f'<text x="{x0}" y="{bottom + 16}" fill="#444">{-scale:.3g}</text>')
        end = f'x="{x0 + 2 * half}" y="{bottom + 16}" text-anchor="end" fill="#444"'
        out.append(f"<text {end}>{scale:.3g}</text>")
        n_zero = int((every[:, j] == 0).sum())
        note = f"exactly zero: {n_zero} of {len(every)}"
        if len(columns) == 1:
            note = f"coefficient (standardized features); {note}"
        out.append(
            f'<text x="{mid}" y="{bottom + 32}" text-anchor="middle" fill="#444">{note}</text>'
        )
    if len(columns) > 1:
        out.append(
            f'<text x="{width / 2}" y="{height - (26 if hidden else 8)}" text-anchor="middle" '
            'fill="#444">coefficients per class (standardized features)</text>'
        )
    if hidden:
        note = f"{hidden} smaller coefficients not shown"
        out.append(f'<text x="8" y="{height - 8}" fill="#666">{note}</text>')
    out.append("</svg>")
    return "\n".join(out)


def coefficient_plot(
    coefs: pd.Series | pd.DataFrame, *, title: str, max_features: int = 30
) -> Figure:
    """Horizontal bars of coefficients sorted by magnitude; exact zeros are marked, not hidden.

    A DataFrame (one column per class) gets one panel per class, features in the same
    order. With more than ``max_features`` features the largest are shown and the rest
    counted in a note under the axis.
    """
    table = coefs.to_frame() if isinstance(coefs, pd.Series) else coefs
    order = table.abs().max(axis=1).sort_values(ascending=False, kind="stable")
    shown = table.loc[order.index[:max_features]].iloc[::-1]
    labels = [str(n) for n in shown.index]
    hidden = len(table) - len(shown)
    panels = list(shown.columns)

    panel_width = 7.5 if len(panels) == 1 else 3.2
    left = min(3.0, 0.5 + _INCH_PER_CHAR * max(len(s) for s in labels))
    width = left + panel_width * len(panels) + 0.3
    height = max(3.0, 1.4 + 0.26 * len(shown))
    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(
        left=left / width,
        right=1 - 0.3 / width,
        top=1 - 0.55 / height,
        bottom=(0.75 if hidden else 0.55) / height,
        wspace=0.08,
    )
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    y = np.arange(len(shown))
    for ax, panel in zip(axes, panels, strict=True):
        values = shown[panel].to_numpy(dtype=float)
        zero = values == 0
        colors = np.where(values > 0, "tab:blue", "tab:red")
        ax.barh(y[~zero], values[~zero], color=colors[~zero])
        if zero.any():
            n_zero = int((table[panel] == 0).sum())
            ax.scatter(
                np.zeros(zero.sum()),
                y[zero],
                marker="x",
                color="0.4",
                zorder=3,
                label=f"exactly zero: {n_zero} of {len(table)}",
            )
            ax.legend(loc="lower right", fontsize="small")
        ax.axvline(0, color="0.3", linewidth=0.8)
        ax.set_xlabel("coefficient (on standardized features)", fontsize="small")
        if len(panels) > 1:
            ax.set_title(str(panel), fontsize="small")
    axes[0].set_yticks(y, labels, fontsize="small")
    axes[0].set_ylim(-0.7, len(shown) - 0.3)
    axes[0].set_ylabel("feature")
    if len(panels) == 1:
        axes[0].set_title(title, fontsize="medium")
    else:
        fig.suptitle(title, fontsize="medium")
    if hidden:
        fig.text(
            0.01, 0.01, f"{hidden} smaller coefficients not shown", fontsize="small", color="0.4"
        )
    return fig


def confusion_matrix_plot(y_true: pd.Series, y_pred: np.ndarray, *, labels: list, title: str):
    """Counts of true against predicted class."""
    fig = Figure(figsize=(5.5, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, ax=ax, colorbar=False, cmap="Blues"
    )
    ax.set_title(title, fontsize="medium")
    return fig


def roc_plot(y_true: pd.Series, proba: np.ndarray, *, classes: list, title: str) -> Figure:
    """ROC curve; one curve per class (one-vs-rest) for more than two classes."""
    fig = Figure(figsize=(5.5, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    shown = classes[1:] if len(classes) == 2 else classes
    for label in shown:
        column = classes.index(label)
        RocCurveDisplay.from_predictions(
            y_true == label,
            proba[:, column],
            ax=ax,
            name=f"{label} vs rest" if len(classes) > 2 else str(label),
            plot_chance_level=label == shown[-1],
        )
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize="medium")
    ax.legend(loc="lower right", fontsize="small")
    return fig


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


def predicted_vs_actual_plot(y: pd.Series, predicted: np.ndarray, *, title: str) -> Figure:
    """Out-of-fold predictions against the truth, with the diagonal."""
    fig = Figure(figsize=(5.5, 5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(y, predicted, s=12, alpha=0.7)
    lo, hi = float(min(y.min(), predicted.min())), float(max(y.max(), predicted.max()))
    ax.plot([lo, hi], [lo, hi], color="0.3", linestyle="--", linewidth=1, label="perfect")
    ax.set_xlabel(f"actual {y.name}")
    ax.set_ylabel("predicted (out of fold)")
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small")
    return fig


def residuals_plot(y: pd.Series, predicted: np.ndarray, *, title: str) -> Figure:
    """Residuals against predictions: structure here is what the linear model misses."""
    fig = Figure(figsize=(6, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(predicted, y.to_numpy() - predicted, s=12, alpha=0.7)
    ax.axhline(0, color="0.3", linestyle="--", linewidth=1)
    ax.set_xlabel("predicted (out of fold)")
    ax.set_ylabel("residual (actual - predicted)")
    ax.set_title(title, fontsize="medium")
    return fig
