"""Scores of models solved by the fast paths, equal to scikit-learn's scorers' values.

Squared-error scores come from sums of squared residuals, ROC AUC from decision values,
and any other scorer runs on predictions computed here (``tests/test_cv.py`` holds them
to ``cross_val_score``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import get_scorer

from pipeline.config import Task


def _r2(ss: float, n: float, spread: float) -> float:
    return 1.0 - ss / spread if spread > 0 else (1.0 if ss == 0 else 0.0)


# The scorers computed from (sum of squared residuals, rows, sum of squares about the mean).
SQUARED_ERROR: dict[str, Callable[[float, float, float], float]] = {
    "neg_root_mean_squared_error": lambda ss, n, _: -math.sqrt(ss / n),
    "neg_mean_squared_error": lambda ss, n, _: -ss / n,
    "r2": _r2,
}


class Fixed(RegressorMixin, BaseEstimator):
    """Predictions already computed, for a scikit-learn scorer."""

    def __init__(self, values: np.ndarray | None = None):
        self.values = values

    def fit(self, X, y):  # pragma: no cover - never fitted, the scorer only predicts
        return self

    def predict(self, X) -> np.ndarray:
        return self.values


def fitted(model, coef, intercept, n_features: int, **attrs):
    """``model`` (an unfitted scikit-learn linear model) given coefficients solved here:
    the fitted attributes scikit-learn documents for it."""
    model.coef_ = coef
    model.intercept_ = intercept
    model.n_features_in_ = n_features
    for key, value in attrs.items():
        setattr(model, key, value)
    return model


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve, ties counted half (roc_auc_score's value), in O(n log n)."""
    pos, neg = np.sort(scores[positive]), np.sort(scores[~positive])
    below = np.searchsorted(neg, pos, side="left")
    tied = np.searchsorted(neg, pos, side="right") - below
    return float((below.sum() + 0.5 * tied.sum()) / (len(pos) * len(neg)))


def score(scoring: str, task: Task, model, X: np.ndarray, y: np.ndarray) -> float:
    """``get_scorer(scoring)(model, X, y)`` without the scorer's input checks on X, which
    cost more than the fit on wide data: a regression model's predictions are one
    matrix-vector product; ROC AUC of a binary logistic model comes from decision values."""
    if task == Task.regression:
        predictions = X @ model.coef_ + model.intercept_
        return score_predictions(scoring, predictions, y)
    if scoring == "roc_auc" and model.coef_.shape[0] == 1:
        positive = y == model.classes_[1]
        if 0 < positive.sum() < len(y):
            return roc_auc(positive, X @ model.coef_[0] + model.intercept_[0])
    return float(get_scorer(scoring)(model, X, y))


def score_predictions(scoring: str, predictions: np.ndarray, y: np.ndarray) -> float:
    """A regression scorer's value for ``predictions`` of targets ``y``."""
    if scoring in SQUARED_ERROR:
        residual = y - predictions
        centered = y - y.mean()
        ss, spread = float(residual @ residual), float(centered @ centered)
        return float(SQUARED_ERROR[scoring](ss, len(y), spread))
    return float(get_scorer(scoring)(Fixed(predictions), None, y))
