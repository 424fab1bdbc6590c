"""Holdout metrics, the baselines the search must beat, and the coefficients table."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
from sklearn.pipeline import Pipeline

from pipeline.config import Penalty
from pipeline.models import Candidate
from pipeline.split import Split

METRICS = ("r2", "rmse", "mae")


def baseline_candidates(guess_alpha: float) -> dict[str, Candidate | None]:
    """The models people write by hand: the guessed Lasso and Ridge, and no penalty at all."""
    return {
        "lasso_guess": Candidate(Penalty.l1, guess_alpha),
        "ridge_guess": Candidate(Penalty.l2, guess_alpha),
        "unpenalized": None,
    }


def regression_metrics(y_true: pd.Series, y_pred: np.ndarray) -> dict[str, float]:
    """R², RMSE and MAE."""
    return {
        "r2": float(r2_score(y_true, y_pred)),
        "rmse": float(root_mean_squared_error(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
    }


def holdout_scores(models: dict[str, Pipeline], split: Split) -> dict[str, dict[str, float]]:
    """Score already-fitted models on the holdout rows."""
    return {
        name: regression_metrics(split.y_test, model.predict(split.X_test))
        for name, model in models.items()
    }


def fit_all(models: dict[str, Pipeline], split: Split) -> dict[str, Pipeline]:
    """Fit a clone of each model on the training rows."""
    return {name: clone(m).fit(split.X_train, split.y_train) for name, m in models.items()}


def coefficients(estimator: Pipeline) -> pd.Series:
    """The fitted model's coefficients, indexed by the feature names after preprocessing."""
    names = estimator[:-1].get_feature_names_out()
    return pd.Series(np.ravel(estimator[-1].coef_), index=names, name="coefficient")


def n_nonzero(coefs: pd.Series) -> int:
    return int(np.count_nonzero(coefs.to_numpy()))
