from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Penalty, Task
from pipeline.evaluate import (
    baseline_candidates,
    classification_metrics,
    coefficients,
    holdout_scores,
    n_nonzero,
    regression_metrics,
)
from pipeline.models import Candidate, make_estimator
from pipeline.split import Split


def test_regression_metrics_known_values():
    m = regression_metrics(pd.Series([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 6.0]))
    assert m["mae"] == pytest.approx(0.5)
    assert m["rmse"] == pytest.approx(1.0)
    assert m["r2"] == pytest.approx(1 - 4 / 5)


def test_baselines_are_the_guesses_and_no_penalty():
    assert baseline_candidates(Task.regression, 0.1) == {
        "lasso_guess": Candidate(Penalty.l1, 0.1),
        "ridge_guess": Candidate(Penalty.l2, 0.1),
        "unpenalized": None,
    }
    assert baseline_candidates(Task.classification, 0.1) == {
        "default_logistic": Candidate(Penalty.l2, 1.0),
        "majority": None,
    }


def test_classification_metrics_known_values():
    y = pd.Series(["a", "b", "b", "a"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    m = classification_metrics(y, proba, ["a", "b"])
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["roc_auc"] == pytest.approx(1.0)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4, 0.7])))
    assert m["f1"] == pytest.approx((0.8 + 2 / 3) / 2)


def test_multiclass_coefficients_have_a_column_per_class():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(90, 3)), columns=["a", "b", "c"])
    y = pd.Series(np.array(["red", "green", "blue"])[np.argmax(X.to_numpy(), axis=1)])
    model = make_estimator(
        Candidate(Penalty.l1, 0.05), task=Task.classification, numeric=["a", "b", "c"]
    ).fit(X, y)
    coefs = coefficients(model)
    assert list(coefs.columns) == ["blue", "green", "red"]
    assert list(coefs.index) == ["a", "b", "c"]
    scores = holdout_scores({"m": model}, Split(X, X, y, y), task=Task.classification)["m"]
    assert set(scores) == {"accuracy", "f1", "roc_auc", "log_loss"}
    assert scores["accuracy"] > 0.9


def test_holdout_scores_and_coefficients():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    y = 2 * X["a"] + rng.normal(0, 0.01, 40)
    parts = Split(X.iloc[:30], X.iloc[30:], y.iloc[:30], y.iloc[30:])
    lasso = make_estimator(Candidate(Penalty.l1, 0.1), numeric=["a", "b", "c"])
    lasso.fit(parts.X_train, parts.y_train)
    scores = holdout_scores({"lasso": lasso}, parts)
    assert scores["lasso"]["r2"] > 0.9
    coefs = coefficients(lasso)
    assert list(coefs.index) == ["a", "b", "c"]
    assert coefs["a"] > 1 and coefs["b"] == 0 and coefs["c"] == 0
    assert n_nonzero(coefs) == 1
