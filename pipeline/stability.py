"""How stable the chosen model's feature selection is across the study's CV folds.

Each fold of the study fits the chosen candidate on its own training rows
(``FastCV.fold_coefficients``); per feature (after preprocessing, named as
``evaluate.coefficients`` names them), over those k fold models:

- ``share_nonzero``: the share of folds whose coefficient is not exactly zero;
- ``sign_agreement``: among the folds where it is non-zero, the share whose sign is the
  majority sign (1.0: always the same sign, 0.5: as often positive as negative); NaN when
  it is zero in every fold, and NaN for every feature of a model of several classes, where
  a feature has one coefficient per class and no single sign;
- ``coef_mean`` and ``coef_std``: the mean and the (population, ddof=0, as the CV scores'
  spread) standard deviation of its coefficient across folds, on the standardized
  features, the scale of the coefficient plot.

A logistic model of several classes has a coefficient per class and feature: a feature's
value in a fold is the Euclidean norm of its coefficients across classes (as
``evaluate.regularization_path`` summarises them), non-zero when it is non-zero for any
class; its mean and spread are then of that norm, never negative.

With ``n_bootstrap > 0``, ``bootstrap_share_nonzero`` is the share of bootstrap resamples
of the training rows (drawn with replacement, seeded) on which the same candidate's
pipeline, fitted by scikit-learn, keeps the feature: stability selection at the chosen
penalty (Meinshausen & Bühlmann, 2010). A feature absent from a resample's preprocessing
(a category not drawn) counts as dropped there.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from sklearn.exceptions import ConvergenceWarning

from pipeline import interrupt
from pipeline.config import Task
from pipeline.evaluate import coefficients
from pipeline.models import Candidate
from pipeline.plots import SMALL, figure
from pipeline.search import CVSetup

COLUMNS = ("share_nonzero", "sign_agreement", "coef_mean", "coef_std")
BOOTSTRAP = "bootstrap_share_nonzero"
# Bar colours: the sign of the mean coefficient when every fold agrees on it.
SIGN_COLORS = {
    "positive in every fold": "tab:blue",
    "negative in every fold": "tab:red",
    "sign flips across folds": "tab:purple",
    "several classes: no single sign": "0.6",
}


@dataclass(frozen=True)
class Stability:
    """Per-feature selection stability of one candidate (see the module's docstring).

    ``table`` is indexed by feature name with the columns of ``COLUMNS`` (and
    ``bootstrap_share_nonzero`` when ``n_bootstrap > 0``)."""

    table: pd.DataFrame
    n_folds: int
    n_bootstrap: int = 0
    several_classes: bool = False  # values are norms across classes, without a sign

    @property
    def always(self) -> list[str]:
        """Features non-zero in every fold."""
        return [str(n) for n in self.table.index[self.table["share_nonzero"] == 1.0]]

    @property
    def never(self) -> list[str]:
        """Features zero in every fold."""
        return [str(n) for n in self.table.index[self.table["share_nonzero"] == 0.0]]


def per_feature(coef: np.ndarray, *, several_classes: bool) -> np.ndarray:
    """One value per feature of a fitted ``coef_``: the coefficient itself, or with several
    classes the norm of the feature's coefficients across classes."""
    rows = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    if several_classes:
        return np.sqrt((rows**2).sum(axis=0))
    return rows[0]


def sign_agreement(values: np.ndarray) -> np.ndarray:
    """Per column of ``values`` (folds x features): the share of its non-zero entries with
    the majority sign; NaN for a column of zeros."""
    positive = (values > 0).sum(axis=0)
    negative = (values < 0).sum(axis=0)
    nonzero = positive + negative
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.maximum(positive, negative) / nonzero
    return np.where(nonzero > 0, share, np.nan)


def stability(
    setup: CVSetup, candidate: Candidate, *, n_bootstrap: int = 0, seed: int = 0
) -> Stability:
    """The stability table of ``candidate`` over ``setup``'s folds (and, with
    ``n_bootstrap > 0``, over that many seeded bootstrap resamples of the training rows)."""
    names = coefficients(setup.fit(candidate)).index
    several = _several_classes(setup)
    values = np.array(
        [per_feature(c, several_classes=several) for c in setup.fast.fold_coefficients(candidate)]
    )
    agreement = np.full(len(names), np.nan) if several else sign_agreement(values)
    table = pd.DataFrame(
        {
            "share_nonzero": (values != 0).mean(axis=0),
            "sign_agreement": agreement,
            "coef_mean": values.mean(axis=0),
            "coef_std": values.std(axis=0),
        },
        index=pd.Index(names, name="feature"),
    )
    if n_bootstrap > 0:
        table[BOOTSTRAP] = bootstrap_share_nonzero(setup, candidate, names, n_bootstrap, seed)
    return Stability(table, len(values), max(n_bootstrap, 0), several)


def bootstrap_share_nonzero(
    setup: CVSetup, candidate: Candidate, names: pd.Index, n_bootstrap: int, seed: int
) -> np.ndarray:
    """Per feature in ``names``: the share of ``n_bootstrap`` resamples of the training rows
    (with replacement, from ``seed``) whose fitted pipeline gives it a non-zero coefficient."""
    rng = np.random.default_rng(seed)
    n = len(setup.X)
    kept = np.zeros(len(names))
    drawn = 0
    for _ in range(n_bootstrap):
        interrupt.check()
        rows = rng.integers(0, n, size=n)
        if setup.task == Task.classification and setup.y.iloc[rows].nunique() < 2:
            continue  # one class drawn: no classifier to fit
        drawn += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted = setup.estimator(candidate).fit(setup.X.iloc[rows], setup.y.iloc[rows])
        coefs = coefficients(fitted)
        frame = coefs.to_frame() if isinstance(coefs, pd.Series) else coefs
        nonzero = (frame != 0).any(axis=1).reindex(names, fill_value=False)
        kept += nonzero.to_numpy(dtype=np.float64)
    return kept / max(drawn, 1)


def _several_classes(setup: CVSetup) -> bool:
    return setup.task == Task.classification and setup.y.nunique() > 2


def stability_plot(stab: Stability, *, title: str, max_features: int = 30) -> Figure:
    """Left: the share of folds keeping each feature (bars coloured by sign agreement; the
    bootstrap share as a marker when computed). Right: the coefficient's mean ± standard
    deviation across folds. The most often kept features (then the largest) are drawn;
    the rest are counted under the figure."""
    table = stab.table
    order = table.assign(magnitude=table["coef_mean"].abs()).sort_values(
        ["share_nonzero", "magnitude"], ascending=False, kind="stable"
    )
    shown = table.loc[order.index[:max_features]].iloc[::-1]
    hidden = len(table) - len(shown)
    height = max(3.0, 1.6 + 0.26 * len(shown))
    fig = figure(height=height)
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=[1, 1.3])
    y = np.arange(len(shown))
    _share_panel(left, y, shown, stab)
    _coefficient_panel(right, y, shown, stab.several_classes)
    left.set_yticks(y, [str(n) for n in shown.index], fontsize=SMALL)
    left.set_ylim(-0.7, len(shown) - 0.3)
    left.set_ylabel("feature")
    note = f"\n(most stable {len(shown)} features shown, {hidden} more hidden)" if hidden else ""
    fig.suptitle(f"{title}{note}", fontsize="medium")
    return fig


def _bar_colors(shown: pd.DataFrame) -> list[str]:
    colors = []
    for agreement, mean in zip(shown["sign_agreement"], shown["coef_mean"], strict=True):
        if np.isnan(agreement):
            colors.append(SIGN_COLORS["several classes: no single sign"])
        elif agreement < 1:
            colors.append(SIGN_COLORS["sign flips across folds"])
        else:
            colors.append(SIGN_COLORS[f"{'positive' if mean > 0 else 'negative'} in every fold"])
    return colors


def _share_panel(ax, y: np.ndarray, shown: pd.DataFrame, stab: Stability) -> None:
    colors = _bar_colors(shown)
    ax.barh(y, shown["share_nonzero"], color=colors)
    drawn = {c for c, share in zip(colors, shown["share_nonzero"], strict=True) if share > 0}
    handles = [Patch(color=c, label=k) for k, c in SIGN_COLORS.items() if c in drawn]
    if BOOTSTRAP in shown:
        (marker,) = ax.plot(
            shown[BOOTSTRAP], y, "k|", markersize=12, label=f"{stab.n_bootstrap} bootstrap fits"
        )
        handles.append(marker)
    ax.set_xlim(0, 1.02)
    ax.set_xlabel(f"share of the {stab.n_folds} CV folds\nwith a non-zero coefficient")
    if handles:
        ax.figure.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=SMALL)


def _coefficient_panel(ax, y: np.ndarray, shown: pd.DataFrame, several: bool) -> None:
    mean, spread = shown["coef_mean"], shown["coef_std"]
    ax.errorbar(mean, y, xerr=spread, fmt="o", color="0.2", ecolor="0.5", markersize=4, capsize=2)
    ax.axvline(0, color="0.3", linewidth=0.8)
    what = "norm across classes" if several else "coefficient"
    ax.set_xlabel(f"{what}: mean ± sd over the folds\n(standardized features)")
