"""Figures, returned to the caller; nothing here saves or shows them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

_INCH_PER_CHAR = 0.075  # small font; lets margins be set without a costly layout pass


def coefficient_plot(coefs: pd.Series, *, title: str, max_features: int = 30) -> Figure:
    """Horizontal bars of coefficients sorted by magnitude; exact zeros are marked, not hidden.

    With more than ``max_features`` features the largest are shown and the rest counted
    in a note under the axis.
    """
    order = coefs.abs().sort_values(ascending=False, kind="stable")
    shown = coefs.loc[order.index[:max_features]][::-1]
    values = shown.to_numpy(dtype=float)
    labels = [str(n) for n in shown.index]
    hidden = len(coefs) - len(shown)
    zero = values == 0

    width, height = 7.5, max(3.0, 1.4 + 0.26 * len(shown))
    left = min(3.0, 0.5 + _INCH_PER_CHAR * max(len(s) for s in labels))
    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(
        left=left / width,
        right=0.97,
        top=1 - 0.5 / height,
        bottom=(0.75 if hidden else 0.55) / height,
    )
    ax = fig.add_subplot()
    y = np.arange(len(shown))
    colors = np.where(values > 0, "tab:blue", "tab:red")
    ax.barh(y[~zero], values[~zero], color=colors[~zero])
    if zero.any():
        ax.scatter(
            np.zeros(zero.sum()),
            y[zero],
            marker="x",
            color="0.4",
            zorder=3,
            label=f"exactly zero: {int((coefs == 0).sum())} of {len(coefs)}",
        )
        ax.legend(loc="lower right", fontsize="small")
    ax.set_yticks(y, labels, fontsize="small")
    ax.set_ylim(-0.7, len(shown) - 0.3)
    ax.axvline(0, color="0.3", linewidth=0.8)
    ax.set_xlabel("coefficient (on standardized features)")
    ax.set_title(title, fontsize="medium")
    if hidden:
        fig.text(
            0.01, 0.01, f"{hidden} smaller coefficients not shown", fontsize="small", color="0.4"
        )
    return fig
