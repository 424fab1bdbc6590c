"""Figures, returned to the caller; nothing here saves or shows them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

_INCH_PER_CHAR = 0.075  # small font; lets margins be set without a costly layout pass


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
