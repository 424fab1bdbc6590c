"""The fast cross-validation path gives the scores of the straightforward computation."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import get_scorer, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

from pipeline.config import Penalty, Task
from pipeline.folds import FastCV, roc_auc
from pipeline.models import Candidate, make_estimator

# A tight solver tolerance: the fast path and a fresh fit then reach the same optimum, so
# any difference is the computation's, not the stopping rule's.
TOL = 1e-10
CANDIDATES = [
    Candidate(Penalty.l1, 0.3),
    Candidate(Penalty.l2, 2.0),
    Candidate(Penalty.elasticnet, 0.2, 0.4),
    Candidate(Penalty.l1, 0.25),  # warm-started from the first, where the path allows it
]


def reference_scores(cv: FastCV, candidate: Candidate) -> list[float]:
    """The straightforward computation the fast path must match: a fresh pipeline per fold."""
    scorer = get_scorer(cv.scoring)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, test in cv.folds:
            model = cv.estimator(candidate).fit(cv.X.iloc[train], cv.y.iloc[train])
            out.append(float(scorer(model, cv.X.iloc[test], cv.y.iloc[test])))
    return out


def _fast(X, y, *, task=Task.regression, scoring="neg_root_mean_squared_error", cats=()):
    X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X).add_prefix("x")
    kind = StratifiedKFold if task == Task.classification else KFold
    folds = tuple(kind(n_splits=5, shuffle=True, random_state=0).split(X, y))
    numeric = tuple(c for c in X.columns if c not in cats)
    return FastCV(X, pd.Series(y), folds, scoring, task, numeric, tuple(cats), False, 100_000, TOL)


def _check(cv: FastCV, *, rtol: float) -> None:
    for candidate in CANDIDATES:
        np.testing.assert_allclose(
            cv.scores(candidate).cv,
            reference_scores(cv, candidate),
            rtol=rtol,
            err_msg=candidate.label,
        )
        refit = cv.refit(candidate)
        plain = cv.estimator(candidate).fit(cv.X, cv.y)
        method = "predict_proba" if cv.task == Task.classification else "predict"
        np.testing.assert_allclose(
            getattr(refit, method)(cv.X), getattr(plain, method)(cv.X), rtol=rtol, atol=1e-8
        )
        assert refit[-1].get_params() == plain[-1].get_params()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            expected = cross_val_predict(
                cv.estimator(candidate), cv.X, cv.y, cv=list(cv.folds), method=method
            )
        # Predictions near zero: compared on the scale of all of them.
        atol = rtol * float(np.std(expected))
        np.testing.assert_allclose(cv.out_of_fold(candidate), expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize(
    "scoring",
    ["neg_root_mean_squared_error", "neg_mean_squared_error", "r2", "neg_mean_absolute_error"],
)
def test_tall_numeric_regression_from_gram_sums(scoring):
    X, y = make_regression(n_samples=400, n_features=12, noise=5, random_state=0)
    X[:, 3] += 1_000  # an offset far from zero: sums are taken around the mean
    cv = _fast(X, y, scoring=scoring)
    assert cv.moments
    _check(cv, rtol=1e-7)


def test_training_fold_scores_match_a_refit_per_fold():
    X, y = make_regression(n_samples=300, n_features=8, noise=5, random_state=1)
    cv = _fast(X, y)
    candidate = Candidate(Penalty.elasticnet, 0.1, 0.7)
    estimator = make_estimator(candidate, numeric=cv.numeric, max_iter=100_000, tol=TOL)
    expected = []
    for train, _ in cv.folds:
        model = estimator.fit(cv.X.iloc[train], cv.y.iloc[train])
        rmse = np.sqrt(np.mean((model.predict(cv.X.iloc[train]) - cv.y.iloc[train]) ** 2))
        expected.append(-rmse)
    np.testing.assert_allclose(cv.scores(candidate).train, expected, rtol=1e-7)


def test_tall_regression_with_categories_from_preprocessed_folds():
    X, y = make_regression(n_samples=300, n_features=5, noise=5, random_state=0)
    X = pd.DataFrame(X).add_prefix("x")
    X["colour"] = np.array(["red", "green", "blue"])[np.arange(300) % 3]
    cv = _fast(X, y + (X["colour"] == "red") * 10, cats=("colour",))
    assert not cv.moments
    _check(cv, rtol=1e-7)


@pytest.mark.parametrize(
    "scoring", ["neg_root_mean_squared_error", "r2", "neg_mean_absolute_error"]
)
def test_wide_regression_kernel_ridge_and_lasso_paths(scoring):
    X, y = make_regression(n_samples=60, n_features=200, n_informative=10, noise=5, random_state=0)
    cv = _fast(X, y, scoring=scoring)
    assert not cv.moments
    _check(cv, rtol=1e-6)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_regression_with_warm_starts(n_classes):
    X, y = make_classification(
        n_samples=300, n_features=6, n_informative=4, n_classes=n_classes, random_state=0
    )
    scoring = "roc_auc" if n_classes == 2 else "neg_log_loss"
    cv = _fast(X, y, task=Task.classification, scoring=scoring)
    _check(cv, rtol=1e-5)


def test_convergence_is_read_from_the_solver():
    X, y = make_regression(n_samples=60, n_features=200, noise=5, random_state=0)
    cv = _fast(X, y)
    cv.max_iter = 2
    assert not cv.scores(Candidate(Penalty.l1, 0.001)).converged
    assert cv.scores(Candidate(Penalty.l2, 0.001)).converged  # closed form


def test_a_column_constant_on_one_fold_s_training_rows():
    # A rare indicator, 1 only on a few of fold 0's validation rows: constant (zero) on
    # fold 0's training rows, where the sums leave rounding noise instead of zero variance.
    X, y = make_regression(n_samples=400, n_features=6, noise=5, random_state=0)
    cv = _fast(X, y)
    rare = np.zeros(400)
    rare[cv.folds[0][1][:3]] = 1.0
    cv = _fast(np.column_stack([X, rare, rare + 1_000]), y)
    assert cv.moments
    _check(cv, rtol=1e-7)


def test_binary_logistic_regression_by_newton_steps():
    # Tall binary data with two redundant (collinear) columns, where saga crawls: the Newton
    # path must reach scikit-learn's optimum, from cold starts, warm starts across penalty
    # types and the fold's reused Hessian alike.
    X, y = make_classification(
        n_samples=400, n_features=8, n_informative=4, n_redundant=2, random_state=3
    )
    cv = _fast(X, y, task=Task.classification, scoring="roc_auc")
    _check(cv, rtol=1e-6)
    fold = cv.fold(0)
    model, converged = fold.fit(cv, Candidate(Penalty.l1, 0.01))
    assert model.n_iter_[0] < 20  # Newton steps, not saga's epochs
    reference = cv.model(Candidate(Penalty.l1, 0.01)).fit(fold.X_train, fold.y_train)
    assert converged
    np.testing.assert_allclose(
        model.decision_function(fold.X_test), reference.decision_function(fold.X_test), atol=1e-6
    )


def test_newton_reports_no_convergence_within_max_iter():
    X, y = make_classification(n_samples=300, n_features=6, random_state=0)
    cv = _fast(X, y, task=Task.classification, scoring="roc_auc")
    cv.max_iter = 1
    assert not cv.scores(Candidate(Penalty.l1, 0.001)).converged


def test_roc_auc_counts_ties_as_roc_auc_score_does():
    rng = np.random.default_rng(0)
    labels = rng.random(500) < 0.3
    scores = np.round(rng.normal(size=500) + labels, 1)  # many ties
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-15)


def test_a_warm_start_far_from_the_optimum_still_reaches_it():
    # Found in review: from a distant solution the gradient can grow for a few steps while
    # the objective falls; the solve must go on to the optimum, at the default tolerance too.
    X, y = make_classification(
        n_samples=270, n_features=34, n_informative=10, class_sep=2.0, random_state=2
    )
    target = Candidate(Penalty.l1, 0.4)
    cv = _fast(X, y, task=Task.classification, scoring="roc_auc")
    cv.tol = 1e-4
    cv.scores(Candidate(Penalty.l2, 1e-3))
    scores = cv.scores(target)
    assert scores.converged
    reference = reference_scores(_fast(X, y, task=Task.classification, scoring="roc_auc"), target)
    np.testing.assert_allclose(scores.cv, reference, rtol=1e-3)


def test_newton_warm_starts_from_lbfgs_solutions(monkeypatch):
    # With many features the L2 penalty alone keeps lbfgs; L1 and elasticnet trials on the
    # same fold may then start from an lbfgs solution.
    monkeypatch.setattr("pipeline.arrayfold.NEWTON_MAX_FEATURES_L2", 3)
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, random_state=5)
    cv = _fast(X, y, task=Task.classification, scoring="roc_auc")
    _check(cv, rtol=1e-5)
