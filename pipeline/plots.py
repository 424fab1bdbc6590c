"""Figures of one model: its coefficients and diagnostics; nothing here saves or shows them.

The study-wide review figures (paths, curves, Optuna's views) are in ``review_plots``.
"""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

_INCH_PER_CHAR = 0.075  # small font; lets margins be set without a costly layout pass
_SVG_ROW, _SVG_TOP = 18, 46  # pixels: one bar, the space above the first


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
    many = len(columns) > 1
    left = min(220, 16 + 7 * max(len(s) for s in labels))
    panel = 240 if many else 520
    width = left + panel * len(columns) + 16
    height = _SVG_TOP + _SVG_ROW * len(shown) + 40 + (18 if hidden else 0) + (18 if many else 0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    for i, name in enumerate(labels):
        y = _SVG_TOP + _SVG_ROW * i + _SVG_ROW / 2 + 4
        out.append(f'<text x="{left - 6}" y="{y}" text-anchor="end">{escape(name)}</text>')
    for j, column in enumerate(columns):
        header = str(column) if many else None
        out += _svg_panel(left + panel * j + 8, panel, shown[:, j], every[:, j], labels, header)
    if many:
        out.append(
            f'<text x="{width / 2}" y="{height - (26 if hidden else 8)}" text-anchor="middle" '
            'fill="#444">coefficients per class (standardized features)</text>'
        )
    if hidden:
        note = f"{hidden} smaller coefficients not shown"
        out.append(f'<text x="8" y="{height - 8}" fill="#666">{note}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _svg_panel(
    x0: float,
    panel: int,
    values: np.ndarray,
    column: np.ndarray,
    labels: list[str],
    header: str | None,
) -> list[str]:
    """One panel of ``coefficient_svg``: bars of ``values``, zeros counted over ``column``."""
    out = []
    scale = np.abs(values).max() or 1.0
    half = (panel - 24) / 2
    mid = x0 + half
    if header is not None:
        out.append(
            f'<text x="{mid}" y="{_SVG_TOP - 8}" text-anchor="middle">{escape(header)}</text>'
        )
    for i, value in enumerate(values.tolist()):
        y = _SVG_TOP + _SVG_ROW * i
        if value == 0:
            cross = f'x="{mid}" y="{y + _SVG_ROW / 2 + 4}" text-anchor="middle" fill="#666"'
            out.append(f"<text {cross}>×</text>")
            continue
        length = abs(value) / scale * half
        x = mid if value > 0 else mid - length
        color = "#1f77b4" if value > 0 else "#d62728"
        out.append(
            f'<rect x="{x:.1f}" y="{y + 3}" width="{length:.1f}" height="{_SVG_ROW - 6}" '
            f'fill="{color}"><title>{escape(labels[i])}: {value:.6g}</title></rect>'
        )
    bottom = _SVG_TOP + _SVG_ROW * len(values)
    out.append(f'<line x1="{mid}" y1="{_SVG_TOP}" x2="{mid}" y2="{bottom}" stroke="#444"/>')
    out.append(f'<text x="{x0}" y="{bottom + 16}" fill="#444">{-scale:.3g}</text>')
    end = f'x="{x0 + 2 * half}" y="{bottom + 16}" text-anchor="end" fill="#444"'
    out.append(f"<text {end}>{scale:.3g}</text>")
    note = f"exactly zero: {int((column == 0).sum())} of {len(column)}"
    if header is None:
        note = f"coefficient (standardized features); {note}"
    out.append(f'<text x="{mid}" y="{bottom + 32}" text-anchor="middle" fill="#444">{note}</text>')
    return out


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
    fig = _coefficient_figure(labels, n_panels=len(panels), hidden=hidden)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    y = np.arange(len(shown))
    for ax, panel in zip(axes, panels, strict=True):
        _coefficient_panel(ax, y, shown[panel].to_numpy(dtype=float), table[panel])
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


def _coefficient_figure(labels: list[str], *, n_panels: int, hidden: int) -> Figure:
    """A figure sized for the labels and panels, margins set without a layout pass."""
    panel_width = 7.5 if n_panels == 1 else 3.2
    left = min(3.0, 0.5 + _INCH_PER_CHAR * max(len(s) for s in labels))
    width = left + panel_width * n_panels + 0.3
    height = max(3.0, 1.4 + 0.26 * len(labels))
    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(
        left=left / width,
        right=1 - 0.3 / width,
        top=1 - 0.55 / height,
        bottom=(0.75 if hidden else 0.55) / height,
        wspace=0.08,
    )
    return fig


def _coefficient_panel(ax, y: np.ndarray, values: np.ndarray, column: pd.Series) -> None:
    """Bars of the shown ``values``; zeros as crosses, counted over the whole ``column``."""
    zero = values == 0
    colors = np.where(values > 0, "tab:blue", "tab:red")
    ax.barh(y[~zero], values[~zero], color=colors[~zero])
    if zero.any():
        ax.scatter(
            np.zeros(zero.sum()),
            y[zero],
            marker="x",
            color="0.4",
            zorder=3,
            label=f"exactly zero: {int((column == 0).sum())} of {len(column)}",
        )
        ax.legend(loc="lower right", fontsize="small")
    ax.axvline(0, color="0.3", linewidth=0.8)
    ax.set_xlabel("coefficient (on standardized features)", fontsize="small")


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
