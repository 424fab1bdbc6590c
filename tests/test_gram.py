"""Penalized least squares from Gram statistics agrees with scikit-learn's estimators."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_regression
from sklearn.linear_model import ElasticNet, Lasso, Ridge

from pipeline.config import Penalty
from pipeline.gram import Gram, SquareRoot, enet_rows
from pipeline.models import Candidate, enet_penalties, ridge_penalty

TOL = 1e-12


def _centered(n=200, p=15, seed=0, collinear=False):
    X, y = make_regression(n_samples=n, n_features=p, noise=5, random_state=seed)
    if collinear:
        X[:, -1] = X[:, 0] + X[:, 1]
    X = X - X.mean(axis=0)
    y = y - y.mean()
    return np.asfortranarray(X), y


def _gram(X, y) -> Gram:
    return Gram(np.ascontiguousarray(X.T @ X), X.T @ y, float(y @ y), len(X))


def _sklearn(candidate: Candidate):
    kind = {Penalty.l1: Lasso, Penalty.elasticnet: ElasticNet}[candidate.penalty]
    extra = {} if candidate.l1_ratio is None else {"l1_ratio": candidate.l1_ratio}
    return kind(alpha=candidate.alpha, fit_intercept=False, tol=TOL, max_iter=100_000, **extra)


@pytest.mark.parametrize("collinear", [False, True])
def test_square_root_rows_are_a_data_set_with_the_same_statistics(collinear):
    X, y = _centered(collinear=collinear)
    gram = _gram(X, y)
    rows, target = gram.root.padded_rows(), gram.root.target(gram.q, gram.yy)
    np.testing.assert_allclose(rows.T @ rows, gram.Q, atol=1e-8 * np.abs(gram.Q).max())
    np.testing.assert_allclose(rows.T @ target, gram.q, rtol=1e-8, atol=1e-6)
    assert target @ target == pytest.approx(y @ y, rel=1e-10)
    # Any w leaves the same residual sum of squares: the same least-squares problem.
    w = np.random.default_rng(0).normal(size=X.shape[1])
    assert np.sum((target - rows @ w) ** 2) == pytest.approx(np.sum((y - X @ w) ** 2), rel=1e-9)


@pytest.mark.parametrize(
    "candidate",
    [
        Candidate(Penalty.l1, 0.5),
        Candidate(Penalty.l1, 0.001),
        Candidate(Penalty.elasticnet, 0.3, 0.2),
    ],
)
@pytest.mark.parametrize("collinear", [False, True])
def test_enet_on_gram_statistics_equals_sklearn_on_the_rows(candidate, collinear):
    X, y = _centered(collinear=collinear)
    gram = _gram(X, y)
    solved = gram.enet(*enet_penalties(candidate, gram.n), max_iter=100_000, tol=TOL)
    expected = _sklearn(candidate).fit(X, y)
    np.testing.assert_allclose(X @ solved.coef, X @ expected.coef_, rtol=1e-7, atol=1e-6)
    assert solved.n_iter < 100_000


def test_a_plain_elasticnet_on_the_square_root_rows_agrees():
    # Not only enet_path given the Gram matrix: an estimator that reads the rows themselves
    # finds the same solution (alpha rescaled from n rows to the p + 1 rows).
    X, y = _centered()
    gram = _gram(X, y)
    rows, target = gram.root.padded_rows(), gram.root.target(gram.q, gram.yy)
    alpha, ratio = 0.2, 0.6
    scaled = alpha * len(X) / len(rows)
    on_rows = ElasticNet(alpha=scaled, l1_ratio=ratio, fit_intercept=False, tol=TOL)
    on_data = ElasticNet(alpha=alpha, l1_ratio=ratio, fit_intercept=False, tol=TOL)
    np.testing.assert_allclose(
        on_rows.fit(rows, target).coef_, on_data.fit(X, y).coef_, rtol=1e-7, atol=1e-8
    )


def test_ridge_from_the_eigendecomposition_equals_sklearn():
    X, y = _centered(collinear=True)
    candidate = Candidate(Penalty.l2, 3.0)
    coef = _gram(X, y).ridge(ridge_penalty(candidate))
    expected = Ridge(alpha=candidate.alpha, fit_intercept=False).fit(X, y).coef_
    np.testing.assert_allclose(coef, expected, rtol=1e-8)


def test_a_path_on_wide_rows_ends_where_a_cold_start_does():
    X, y = _centered(n=40, p=120)
    target = Candidate(Penalty.l1, 0.05)
    alphas = np.geomspace(5.0, target.alpha, 8)
    penalties = [enet_penalties(Candidate(Penalty.l1, a), len(X)) for a in alphas]
    solutions = enet_rows(X, y, penalties, max_iter=100_000, tol=TOL)
    assert len(solutions) == len(alphas)
    expected = _sklearn(target).fit(X, y)
    np.testing.assert_allclose(X @ solutions[-1].coef, X @ expected.coef_, rtol=1e-6, atol=1e-5)


def test_enet_rows_leaves_the_warm_start_alone():
    X, y = _centered()
    start = np.ones(X.shape[1])
    enet_rows(X, y, [(10.0, 1.0)], coef_init=start, max_iter=1000, tol=1e-6)
    np.testing.assert_array_equal(start, np.ones(X.shape[1]))


def test_square_root_of_a_rank_deficient_matrix():
    A = np.random.default_rng(1).normal(size=(3, 6))
    root = SquareRoot(A.T @ A)
    assert root.rows.shape == (3, 6)
    np.testing.assert_allclose(root.rows.T @ root.rows, A.T @ A, atol=1e-10)
