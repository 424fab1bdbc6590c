"""The figures a reviewer sees on a study's parent run, from the search's own numbers.

Paths come from cheap refits on the training rows, curves from the trials, diagnostics
from out-of-fold predictions: nothing here looks at the holdout.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline import evaluate, plots, review_plots, search
from pipeline.config import Penalty, Task
from pipeline.models import Candidate

N_PATH_ALPHAS = 20
MODEL_NAMES = {
    Task.regression: {Penalty.l1: "Lasso", Penalty.l2: "Ridge", Penalty.elasticnet: "ElasticNet"},
    Task.classification: {p: "logistic" for p in Penalty},
}


def figures(
    setup: search.CVSetup,
    space: search.SearchSpace,
    trials: pd.DataFrame,
    importances: dict[str, float],
    best: Candidate,
    *,
    classes: list,
) -> dict[str, Figure]:
    """Every review figure, by artifact file name."""
    chosen = (best.penalty.value, best.alpha)
    scoring = setup.scoring
    paths = _paths(setup, space, trials, best)
    out = {
        "regularization_path.png": review_plots.regularization_path_plot(paths, chosen=chosen),
        "validation_curve.png": review_plots.validation_curve_plot(
            trials, chosen=chosen, scoring=scoring
        ),
        "sparsity.png": review_plots.sparsity_plot(paths, chosen=chosen),
        "optimization_history.png": review_plots.optimization_history_plot(trials, scoring=scoring),
        "slice_alpha.png": review_plots.slice_plot(trials, chosen=chosen, scoring=scoring),
    }
    if importances:
        out["param_importances.png"] = review_plots.importance_plot(importances)
    where = f"{best.label}, out-of-fold on the training rows"
    # Rows some fold validates on: all of them, but the first rows of forward-chaining folds.
    seen = np.unique(np.concatenate([test for _, test in setup.folds]))
    y = setup.y.iloc[seen]
    if setup.task == Task.classification:
        proba = search.out_of_fold(setup, best)[seen]
        predicted = [classes[i] for i in proba.argmax(axis=1)]
        out["confusion_matrix.png"] = plots.confusion_matrix_plot(
            y, predicted, labels=classes, title=f"Confusion matrix: {where}"
        )
        out["roc_curve.png"] = plots.roc_plot(
            y, proba, classes=classes, title=f"ROC curve: {where}"
        )
    else:
        predicted = search.out_of_fold(setup, best)[seen]
        out["predicted_vs_actual.png"] = plots.predicted_vs_actual_plot(
            y, predicted, title=f"Predicted vs actual: {where}"
        )
        out["residuals.png"] = plots.residuals_plot(y, predicted, title=f"Residuals: {where}")
    return out


def _paths(
    setup: search.CVSetup, space: search.SearchSpace, trials: pd.DataFrame, best: Candidate
) -> dict[str, pd.DataFrame]:
    alphas = np.geomspace(space.alpha_low, space.alpha_high, N_PATH_ALPHAS)
    names = MODEL_NAMES[setup.task]
    paths = {}
    for penalty in space.penalties:
        l1_ratio = None
        label = f"{penalty.value} ({names[penalty]})"
        if penalty == Penalty.elasticnet:
            l1_ratio = _elasticnet_ratio(trials, best, space)
            label = f"{penalty.value} (l1_ratio={l1_ratio:.2g})"
        # Strongest penalty first: each refit starts from the one before it.
        candidates = [Candidate(penalty, float(a), l1_ratio) for a in alphas[::-1]]
        paths[label] = evaluate.regularization_path(setup.fit, candidates)
    return paths


def _elasticnet_ratio(trials: pd.DataFrame, best: Candidate, space: search.SearchSpace) -> float:
    """The chosen l1_ratio: the best trial's, or the best ElasticNet trial's."""
    if best.l1_ratio is not None:
        return best.l1_ratio
    rows = trials[trials["penalty"] == Penalty.elasticnet.value]
    if len(rows):
        return float(rows.loc[rows["cv_score"].idxmax(), "l1_ratio"])
    return (space.l1_ratio_low + space.l1_ratio_high) / 2
