"""The proximal Newton method reaches LogisticRegression's optimum."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

from pipeline.config import Penalty, Task
from pipeline.models import Candidate, logistic_penalties, make_model
from pipeline.newton import Point, newton_logistic, violation


def _data(seed=3):
    X, y = make_classification(
        n_samples=400, n_features=8, n_informative=4, n_redundant=2, random_state=seed
    )
    return StandardScaler().fit_transform(X), y.astype(np.float64)


def _cold(y) -> Point:
    share = float(y.mean())
    return Point(np.zeros(8), math.log(share / (1 - share)))


@pytest.mark.parametrize(
    "candidate",
    [
        Candidate(Penalty.l1, 0.05),
        Candidate(Penalty.l2, 0.05),
        Candidate(Penalty.elasticnet, 0.5, 0.3),
    ],
)
def test_newton_matches_logistic_regression(candidate):
    X, y = _data()
    result = newton_logistic(X, y, *logistic_penalties(candidate), _cold(y), tol=1e-8, max_iter=100)
    assert result.converged
    reference = make_model(candidate, task=Task.classification, max_iter=100_000, tol=1e-12)
    reference.fit(X, y)
    np.testing.assert_allclose(
        X @ result.point.coef + result.point.intercept,
        reference.decision_function(X),
        atol=1e-5,
    )


def test_a_warm_start_and_a_reused_hessian_reach_the_same_optimum():
    X, y = _data()
    first = newton_logistic(
        X, y, *logistic_penalties(Candidate(Penalty.l2, 1e-3)), _cold(y), tol=1e-8, max_iter=100
    )
    penalties = logistic_penalties(Candidate(Penalty.l1, 0.1))
    warm = newton_logistic(
        X, y, *penalties, first.point, tol=1e-8, max_iter=100, hessian=first.hessian
    )
    cold = newton_logistic(X, y, *penalties, _cold(y), tol=1e-8, max_iter=100)
    assert warm.converged and cold.converged
    np.testing.assert_allclose(warm.point.coef, cold.point.coef, atol=1e-6)


def test_stops_unconverged_at_max_iter():
    X, y = _data()
    result = newton_logistic(
        X, y, *logistic_penalties(Candidate(Penalty.l1, 1e-3)), _cold(y), tol=1e-12, max_iter=1
    )
    assert (result.converged, result.n_iter) == (False, 1)


def test_violation_is_zero_at_a_subgradient_optimum():
    w = np.array([0.0, 2.0, -1.0])
    g = np.array([0.5, -1.0, 1.0])  # |g_0| <= l1 at zero, g = -l1 sign(w) elsewhere
    assert violation(g, w, 1.0, 0.0) == 0.0
    assert violation(g + 0.25, w, 1.0, 0.0) == pytest.approx(0.25)
