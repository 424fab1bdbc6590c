from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Penalty
from pipeline.evaluate import (
    baseline_candidates,
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
    assert baseline_candidates(0.1) == {
        "lasso_guess": Candidate(Penalty.l1, 0.1),
        "ridge_guess": Candidate(Penalty.l2, 0.1),
        "unpenalized": None,
    }


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
