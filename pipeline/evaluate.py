"""Holdout metrics, the baselines the search must beat, and the coefficients table."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.pipeline import Pipeline

from pipeline.config import Penalty, Task
from pipeline.models import Candidate
from pipeline.split import Split
from pipeline.uncertainty import Interval, Predictions, interval


def baseline_candidates(task: Task, guess_alpha: float) -> dict[str, Candidate | None]:
    """The models people write by hand. ``None`` is the unpenalized or majority-class model."""
    if task == Task.classification:
        return {"default_logistic": Candidate(Penalty.l2, 1.0), "majority": None}
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


def classification_metrics(y_true: pd.Series, proba: np.ndarray, classes: list) -> dict[str, float]:
    """Accuracy, macro F1, ROC AUC (one-vs-rest for several classes) and log loss."""
    labels = np.asarray(classes)
    y_pred = labels[np.argmax(proba, axis=1)]
    if len(labels) == 2:
        auc = roc_auc_score(y_true == labels[1], proba[:, 1])
    else:
        auc = roc_auc_score(y_true, proba, multi_class="ovr", labels=labels)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1": float(f1_score(y_true, y_pred, average="macro")),
        "roc_auc": float(auc),
        "log_loss": float(log_loss(y_true, proba, labels=labels)),
    }


def holdout_scores(
    models: dict[str, Pipeline], split: Split, *, task: Task = Task.regression
) -> dict[str, dict[str, float]]:
    """Score fitted models on the holdout rows."""
    return scores_of(holdout_predictions(models, split, task=task), task=task)


def holdout_predictions(
    models: dict[str, Pipeline], split: Split, *, task: Task = Task.regression
) -> dict[str, Predictions]:
    """Each fitted model's predictions (class probabilities) for the holdout rows."""
    y = split.y_test.to_numpy()
    if task == Task.classification:
        return {
            name: Predictions(y, model.predict_proba(split.X_test), np.asarray(model.classes_))
            for name, model in models.items()
        }
    return {name: Predictions(y, model.predict(split.X_test)) for name, model in models.items()}


def scores_of(predictions: dict[str, Predictions], *, task: Task) -> dict[str, dict[str, float]]:
    """The holdout metrics of each model's predictions."""
    if task == Task.classification:
        return {
            name: classification_metrics(p.y, p.values, list(p.classes))
            for name, p in predictions.items()
        }
    return {name: regression_metrics(p.y, p.values) for name, p in predictions.items()}


def intervals(
    predictions: dict[str, Predictions],
    scores: dict[str, dict[str, float]],
    *,
    n_resamples: int,
    level: float,
    seed: int,
) -> dict[str, dict[str, Interval]]:
    """Each model's metrics with their bootstrap intervals (the same resamples for all)."""
    return {
        name: {
            metric: interval(
                metric, predictions[name], value, n_resamples=n_resamples, level=level, seed=seed
            )
            for metric, value in scores[name].items()
        }
        for name in predictions
    }


def coefficients(estimator: Pipeline) -> pd.Series | pd.DataFrame:
    """The fitted model's coefficients by feature name (after preprocessing).

    A Series for regression and two-class models; for more classes a DataFrame with a
    column per class.
    """
    names = estimator[:-1].get_feature_names_out()
    coef = np.atleast_2d(estimator[-1].coef_)
    if coef.shape[0] == 1:
        return pd.Series(coef[0], index=names, name="coefficient")
    return pd.DataFrame(coef.T, index=names, columns=[str(c) for c in estimator[-1].classes_])


def n_nonzero(coefs: pd.Series | pd.DataFrame) -> int:
    """Features with a non-zero coefficient (for any class)."""
    values = np.atleast_2d(coefs.to_numpy().T)
    return int(np.count_nonzero(np.any(values != 0, axis=0)))


def regularization_path(fit, candidates: list[Candidate]) -> pd.DataFrame:
    """Coefficients of ``fit(candidate)`` for each candidate, indexed by alpha.

    Several classes are summarised per feature by the norm of its coefficients across
    classes (zero exactly when the feature is dropped for every class).
    """
    rows = {}
    for candidate in candidates:
        coefs = coefficients(fit(candidate))
        if isinstance(coefs, pd.DataFrame):
            coefs = np.sqrt((coefs**2).sum(axis=1))
        rows[candidate.alpha] = coefs
    return pd.DataFrame(rows).T.sort_index().rename_axis("alpha")
