"""Figures of one model: its coefficients and diagnostics; nothing here saves or shows them.

The study-wide review figures (paths, curves, Optuna's views) are in ``review_plots``.
Every figure is ``WIDTH`` inches at ``DPI`` (900 px: MLflow's artifact viewer shows it
without shrinking) with no text under ``SMALL`` points; a long list of features shows the
largest and counts the rest.
"""

from __future__ import annotations

from html import escape

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

WIDTH, HEIGHT, DPI = 9.0, 4.8, 100  # inches, inches, pixels per inch
SMALL = 9  # points: the smallest text in a figure
PANELS_PER_ROW = 3  # class panels of a coefficient plot; more wrap to a new row
INCH_PER_CHAR = 0.075  # 9 pt text; lets margins be set without a costly layout pass
_SVG_ROW, _SVG_TOP, _SVG_WIDTH = 18, 46, 900  # pixels: one bar, above the first, at most


def figure(height: float = HEIGHT) -> Figure:
    """An empty figure of the common width and resolution, with constrained layout."""
    return Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")


def log_x(ax) -> None:
    """A log-scale x axis with minor ticks at 2 and 5 only (eight a decade cost up to a
    third of a figure's drawing time)."""
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))


def feature_styles(n: int) -> list[tuple[tuple[float, float, float], str]]:
    """``n`` distinct (colour, line style) pairs: tab20's ten dark hues, then its ten light
    ones, solid; then the same dashed, dotted and dash-dotted (80 before any repeats)."""
    tab20 = matplotlib.colormaps["tab20"].colors
    hues = [*tab20[0::2], *tab20[1::2]]
    return [(hues[i % 20], ("-", "--", ":", "-.")[(i // 20) % 4]) for i in range(n)]


def spread(targets: np.ndarray, *, gap: float, low: float, high: float) -> np.ndarray:
    """Positions for labels of the sorted ``targets``: at least ``gap`` apart, each crowd
    centred on its targets, inside [``low``, ``high``] where they fit."""
    steps = gap * np.arange(len(targets))
    up = steps + np.maximum.accumulate(targets - steps)
    down = steps + np.minimum.accumulate((targets - steps)[::-1])[::-1]
    placed = steps + np.maximum.accumulate(np.maximum((up + down) / 2, low) - steps)
    capped = np.minimum(placed, high - steps[::-1])
    return steps + np.minimum.accumulate((capped - steps)[::-1])[::-1]


def shorten(name: str, chars: int) -> str:
    """``name``, or its start and end around an ellipsis, in at most ``chars`` characters."""
    head = (chars - 1) // 2
    return name if len(name) <= chars else f"{name[:head]}…{name[len(name) - (chars - 1 - head) :]}"


def coefficient_svg(coefs: pd.Series | pd.DataFrame, *, title: str, max_features: int = 30) -> str:
    """The coefficient plot as a small SVG document, for the child run of every trial.

    The same picture as ``coefficient_plot`` (bars sorted by magnitude, exact zeros marked
    with a cross, one panel per class, at most ``PANELS_PER_ROW`` to a row) written
    directly: about a hundred times cheaper than drawing it with matplotlib, which matters
    when every trial logs one. It is at most 900 px wide.
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
    per_row = min(len(columns), PANELS_PER_ROW)
    left = min(220, 16 + 7 * max(len(s) for s in labels))
    panel = min(240 if many else 520, (_SVG_WIDTH - left - 16) // per_row)
    width = left + panel * per_row + 16
    block = _SVG_ROW * len(shown) + 40 + (18 if many else 0)  # one row of panels
    height = _SVG_TOP + block * -(-len(columns) // per_row) + (18 if hidden else 0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    for j, column in enumerate(columns):
        top = _SVG_TOP + block * (j // per_row)
        if j % per_row == 0:
            for i, name in enumerate(labels):
                y = top + _SVG_ROW * i + _SVG_ROW / 2 + 4
                out.append(f'<text x="{left - 6}" y="{y}" text-anchor="end">{escape(name)}</text>')
        header = str(column) if many else None
        x0 = left + panel * (j % per_row) + 8
        out += _svg_panel(x0, top, panel, shown[:, j], every[:, j], labels, header)
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
    top: float,
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
        out.append(f'<text x="{mid}" y="{top - 8}" text-anchor="middle">{escape(header)}</text>')
    for i, value in enumerate(values.tolist()):
        y = top + _SVG_ROW * i
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
    bottom = top + _SVG_ROW * len(values)
    out.append(f'<line x1="{mid}" y1="{top}" x2="{mid}" y2="{bottom}" stroke="#444"/>')
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
    order, at most ``PANELS_PER_ROW`` panels to a row. With more than ``max_features``
    features the largest are shown and the rest counted in a note under the axes.
    """
    table = coefs.to_frame() if isinstance(coefs, pd.Series) else coefs
    order = table.abs().max(axis=1).sort_values(ascending=False, kind="stable")
    shown = table.loc[order.index[:max_features]].iloc[::-1]
    labels = [str(n) for n in shown.index]
    hidden = len(table) - len(shown)
    panels = list(shown.columns)
    fig, axes = _coefficient_axes(labels, n_panels=len(panels), hidden=hidden)
    y = np.arange(len(shown))
    many = len(panels) > 1
    for i, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
        _coefficient_panel(ax, y, shown[panel].to_numpy(dtype=float), table[panel], many)
        if i % PANELS_PER_ROW == 0:
            ax.set_yticks(y, labels, fontsize=SMALL)
            ax.set_ylabel("feature")
    axes[0].set_ylim(-0.7, len(shown) - 0.3)
    if many:
        fig.suptitle(title, fontsize="medium")
    else:
        axes[0].set_title(title, fontsize="medium")
    notes = ["coefficients on standardized features"] if many else []
    if hidden:
        notes.append(f"{hidden} smaller coefficients not shown")
    if notes:
        fig.text(0.01, 0.01, "; ".join(notes), fontsize=SMALL, color="0.4")
    return fig


def _coefficient_axes(labels: list[str], *, n_panels: int, hidden: bool) -> tuple[Figure, list]:
    """A figure ``WIDTH`` wide and tall enough for the labels, its panels wrapped in rows of
    ``PANELS_PER_ROW``; margins set in inches, without a costly layout pass."""
    per_row = min(n_panels, PANELS_PER_ROW)
    n_rows = -(-n_panels // per_row)
    left = min(3.0, 0.5 + INCH_PER_CHAR * max(len(s) for s in labels))
    many = n_panels > 1
    top, bottom, gap = (0.9 if many else 0.55), (0.75 if hidden or many else 0.55), 0.95
    height = max(3.0, top + bottom + n_rows * (0.3 + 0.26 * len(labels)) + (n_rows - 1) * gap)
    fig = Figure(figsize=(WIDTH, height), dpi=DPI)
    axes_height = (height - top - bottom - (n_rows - 1) * gap) / n_rows
    fig.subplots_adjust(
        left=left / WIDTH,
        right=1 - 0.3 / WIDTH,
        top=1 - top / height,
        bottom=bottom / height,
        wspace=0.08,
        hspace=gap / axes_height,
    )
    grid = fig.subplots(n_rows, per_row, sharey=True, squeeze=False).ravel()
    for ax in grid[n_panels:]:
        ax.remove()
    return fig, list(grid[:n_panels])


def _coefficient_panel(
    ax, y: np.ndarray, values: np.ndarray, column: pd.Series, many: bool
) -> None:
    """Bars of the shown ``values``; zeros as crosses, counted over the whole ``column`` (in
    a legend, or in the panel's title when there is a panel per class)."""
    zero = values == 0
    count = f"exactly zero: {int((column == 0).sum())} of {len(column)}"
    colors = np.where(values > 0, "tab:blue", "tab:red")
    ax.barh(y[~zero], values[~zero], color=colors[~zero])
    if zero.any():
        ax.scatter(
            np.zeros(zero.sum()),
            y[zero],
            marker="x",
            color="0.4",
            zorder=3,
            label=count,
        )
    if many:
        ax.set_title(f"{column.name}\n{count}", fontsize=SMALL)
    elif zero.any():
        ax.legend(loc="lower right", fontsize=SMALL)
    ax.axvline(0, color="0.3", linewidth=0.8)
    xlabel = "coefficient" if many else "coefficient (on standardized features)"
    ax.set_xlabel(xlabel, fontsize=SMALL)
    ax.tick_params(labelsize=SMALL)


def confusion_matrix_plot(y_true: pd.Series, y_pred: np.ndarray, *, labels: list, title: str):
    """Counts of true against predicted class."""
    fig = figure()
    ax = fig.add_subplot()
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, ax=ax, colorbar=False, cmap="Blues"
    )
    ax.set_title(title, fontsize="medium")
    return fig


def roc_plot(y_true: pd.Series, proba: np.ndarray, *, classes: list, title: str) -> Figure:
    """ROC curve; one curve per class (one-vs-rest) for more than two classes."""
    fig = figure()
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
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=SMALL)
    return fig


def predicted_vs_actual_plot(y: pd.Series, predicted: np.ndarray, *, title: str) -> Figure:
    """Out-of-fold predictions against the truth, with the diagonal."""
    fig = figure()
    ax = fig.add_subplot()
    ax.scatter(y, predicted, s=12, alpha=0.7)
    lo, hi = float(min(y.min(), predicted.min())), float(max(y.max(), predicted.max()))
    ax.plot([lo, hi], [lo, hi], color="0.3", linestyle="--", linewidth=1, label="perfect")
    ax.set_xlabel(f"actual {y.name}")
    ax.set_ylabel("predicted (out of fold)")
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize=SMALL)
    return fig


def residuals_plot(y: pd.Series, predicted: np.ndarray, *, title: str) -> Figure:
    """Residuals against predictions: structure here is what the linear model misses."""
    fig = figure()
    ax = fig.add_subplot()
    ax.scatter(predicted, y.to_numpy() - predicted, s=12, alpha=0.7)
    ax.axhline(0, color="0.3", linestyle="--", linewidth=1)
    ax.set_xlabel("predicted (out of fold)")
    ax.set_ylabel("residual (actual - predicted)")
    ax.set_title(title, fontsize="medium")
    return fig
