"""Selection stability of the chosen model across the CV folds (and bootstrap resamples)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold

from pipeline.config import Penalty, Task
from pipeline.evaluate import coefficients
from pipeline.models import Candidate
from pipeline.search import CVSetup
from pipeline.stability import COLUMNS, Stability, stability, stability_plot

# A tight solver tolerance: the folds' fast fits and plain scikit-learn fits then reach the
# same optimum, so any difference is the computation's, not the stopping rule's.
TOL = 1e-10
CANDIDATES = [
    Candidate(Penalty.l1, 0.3),
    Candidate(Penalty.l2, 2.0),
    Candidate(Penalty.elasticnet, 0.2, 0.4),
]


def _setup(X, y, *, task=Task.regression, cats=(), folds=None, tol=TOL) -> CVSetup:
    X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X).add_prefix("x")
    numeric = [c for c in X.columns if c not in cats]
    scoring = "neg_log_loss" if task == Task.classification else "neg_root_mean_squared_error"
    common = {"scoring": scoring, "numeric": numeric, "categorical": list(cats)}
    common |= {"max_iter": 100_000, "tol": tol, "task": task}
    if folds is None:
        return CVSetup.build(X, pd.Series(y), n_splits=5, random_state=0, **common)
    return CVSetup(X, pd.Series(y), tuple(folds), **common)


def _sparse_regression():
    """200 rows, 3 informative features of 10 with large coefficients, little noise."""
    X, y, coef = make_regression(
        n_samples=200, n_features=10, n_informative=3, noise=1.0, coef=True, random_state=0
    )
    names = [f"x{j}" for j in range(10)]
    return X, y, {n for n, c in zip(names, coef, strict=True) if c != 0}


def _plain_coefficients(setup: CVSetup, candidate: Candidate) -> list[np.ndarray]:
    """The straightforward computation: a fresh pipeline per fold, coefficients by name."""
    names = coefficients(setup.fit(candidate)).index
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, _ in setup.folds:
            fitted = setup.estimator(candidate).fit(setup.X.iloc[train], setup.y.iloc[train])
            coefs = coefficients(fitted).reindex(names, fill_value=0.0)
            out.append(np.atleast_2d(coefs.to_numpy().T))  # (classes or 1) x features
    return out


def _assert_same(setup: CVSetup, candidate: Candidate, *, rtol: float) -> None:
    fast = setup.fast.fold_coefficients(candidate)
    plain = _plain_coefficients(setup, candidate)
    assert len(fast) == len(plain) == len(setup.folds)
    for i, (a, b) in enumerate(zip(fast, plain, strict=True)):
        assert a.ndim == (1 if setup.task == Task.regression else 2)
        a = np.atleast_2d(a)
        assert a.shape == b.shape, (candidate.label, i)
        atol = rtol * float(np.max(np.abs(b)))  # zeros and near-zeros: on the largest's scale
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{candidate.label} {i}")


# -- (a) what the table says --------------------------------------------------------------------


def test_lasso_keeps_the_informative_features_in_every_fold_and_drops_the_noise():
    X, y, informative = _sparse_regression()
    setup = _setup(X, y, tol=1e-4)
    stab = stability(setup, Candidate(Penalty.l1, 1.0))
    table = stab.table
    assert isinstance(stab, Stability) and stab.n_folds == 5
    assert list(table.columns) == list(COLUMNS)
    assert list(table.index) == [f"x{j}" for j in range(10)]
    noise = [n for n in table.index if n not in informative]
    assert (table.loc[sorted(informative), "share_nonzero"] == 1.0).all()
    assert (table.loc[noise, "share_nonzero"] <= 0.2).all()
    assert set(stab.always) == informative
    assert stab.always == list(table.index[table["share_nonzero"] == 1.0])
    assert stab.never == list(table.index[table["share_nonzero"] == 0.0])
    assert not set(stab.always) & set(stab.never)
    # One sign throughout for the informative features; NaN where never non-zero.
    assert (table.loc[sorted(informative), "sign_agreement"] == 1.0).all()
    assert table.loc[stab.never, "sign_agreement"].isna().all()
    assert (table.loc[stab.never, ["coef_mean", "coef_std"]] == 0.0).all().all()


def test_the_table_summarises_the_fold_coefficients():
    X, y, _ = _sparse_regression()
    setup = _setup(X, y)
    candidate = Candidate(Penalty.elasticnet, 3.0, 0.5)
    folds = np.array(setup.fast.fold_coefficients(candidate))
    table = stability(setup, candidate).table
    np.testing.assert_allclose(table["share_nonzero"], (folds != 0).mean(axis=0))
    np.testing.assert_allclose(table["coef_mean"], folds.mean(axis=0))
    np.testing.assert_allclose(table["coef_std"], folds.std(axis=0))
    assert table["sign_agreement"].dropna().between(0.5, 1.0).all()


def test_sign_agreement_counts_the_majority_sign_among_non_zero_folds():
    from pipeline.stability import sign_agreement

    values = np.array([[1.0, 0.0, 0.0, 2.0], [-1.0, 0.0, 3.0, 2.0], [2.0, 0.0, -1.0, 2.0]])
    np.testing.assert_allclose(sign_agreement(values), [2 / 3, np.nan, 0.5, 1.0])


def test_several_classes_are_summarised_by_the_norm_across_classes():
    X, y = make_classification(
        n_samples=300, n_features=8, n_informative=4, n_classes=3, random_state=0
    )
    stab = stability(_setup(X, y, task=Task.classification), Candidate(Penalty.l1, 0.05))
    table = stab.table
    assert stab.several_classes
    assert table["sign_agreement"].isna().all()
    assert (table["coef_mean"] >= 0).all() and table["share_nonzero"].between(0, 1).all()
    # (A fresh setup: a second solve on the same one would start from the first's solution.)
    fresh = _setup(X, y, task=Task.classification)
    folds = fresh.fast.fold_coefficients(Candidate(Penalty.l1, 0.05))
    assert all(f.shape == (3, 8) for f in folds)
    norms = np.array([np.linalg.norm(f, axis=0) for f in folds])
    np.testing.assert_allclose(table["coef_mean"], norms.mean(axis=0))
    np.testing.assert_allclose(table["share_nonzero"], (norms != 0).mean(axis=0))


# -- (b) the folds' coefficients are plain scikit-learn's -------------------------------------


@pytest.mark.parametrize("candidate", CANDIDATES, ids=lambda c: c.label)
def test_fold_coefficients_from_sums_match_scikit_learn(candidate):
    X, y = make_regression(n_samples=300, n_features=8, noise=5, random_state=1)
    X[:, 2] += 1_000  # far from zero: the sums are taken about the mean
    setup = _setup(X, y)
    assert setup.fast.moments
    _assert_same(setup, candidate, rtol=1e-4)


@pytest.mark.parametrize("candidate", CANDIDATES, ids=lambda c: c.label)
def test_fold_coefficients_align_categories_missing_from_a_fold(candidate):
    # "violet" is on 4 rows, all in fold 0's validation rows: fold 0's encoder never sees
    # it, so its coefficient there is 0 and the other columns must keep their names.
    X, y = make_regression(n_samples=200, n_features=4, noise=5, random_state=0)
    X = pd.DataFrame(X).add_prefix("x")
    colour = np.array(["red", "green", "blue"], dtype=object)[np.arange(200) % 3]
    folds = list(KFold(n_splits=5, shuffle=True, random_state=0).split(X))
    colour[folds[0][1][:4]] = "violet"
    X["colour"] = colour
    y = y + (colour == "red") * 10 + (colour == "violet") * 30
    setup = _setup(X, y, cats=("colour",), folds=folds)
    assert not setup.fast.moments
    names = list(coefficients(setup.fit(candidate)).index)
    assert "colour_violet" in names
    first = setup.fast.fold_coefficients(candidate)[0]
    assert first[names.index("colour_violet")] == 0.0
    _assert_same(setup, candidate, rtol=1e-4)


@pytest.mark.parametrize("candidate", CANDIDATES, ids=lambda c: c.label)
def test_fold_coefficients_on_wide_data_match_scikit_learn(candidate):
    X, y = make_regression(n_samples=60, n_features=120, n_informative=8, noise=5, random_state=0)
    setup = _setup(X, y)
    assert not setup.fast.moments
    _assert_same(setup, candidate, rtol=1e-4)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize(
    "candidate", [Candidate(Penalty.l1, 0.05), Candidate(Penalty.l2, 0.5)], ids=lambda c: c.label
)
def test_fold_coefficients_of_logistic_models_match_scikit_learn(n_classes, candidate):
    X, y = make_classification(
        n_samples=300, n_features=6, n_informative=4, n_classes=n_classes, random_state=0
    )
    setup = _setup(X, y, task=Task.classification)
    folds = setup.fast.fold_coefficients(candidate)
    assert all(f.shape == (1 if n_classes == 2 else 3, 6) for f in folds)
    _assert_same(setup, candidate, rtol=1e-4)


# -- (c) bootstrap ------------------------------------------------------------------------------


def test_bootstrap_share_is_a_reproducible_share():
    X, y, informative = _sparse_regression()
    setup = _setup(X, y, tol=1e-4)
    candidate = Candidate(Penalty.l1, 1.0)
    assert "bootstrap_share_nonzero" not in stability(setup, candidate).table
    first = stability(setup, candidate, n_bootstrap=12, seed=3)
    again = stability(setup, candidate, n_bootstrap=12, seed=3)
    share = first.table["bootstrap_share_nonzero"]
    assert list(first.table.columns) == [*COLUMNS, "bootstrap_share_nonzero"]
    assert first.n_bootstrap == 12
    assert share.between(0.0, 1.0).all()
    assert np.isclose(share * 12, np.round(share * 12)).all()  # counts of 12 resamples
    pd.testing.assert_frame_equal(first.table, again.table)
    assert (share[sorted(informative)] == 1.0).all()


def test_bootstrap_of_a_classifier_with_categories():
    X, y = make_classification(
        n_samples=150, n_features=4, n_informative=3, n_redundant=0, random_state=1
    )
    X = pd.DataFrame(X).add_prefix("x")
    X["kind"] = np.array(["a", "b", "c"])[np.arange(150) % 3]
    setup = _setup(X, y, task=Task.classification, cats=("kind",), tol=1e-4)
    table = stability(setup, Candidate(Penalty.l1, 0.1), n_bootstrap=5, seed=0).table
    assert list(table.index) == ["x0", "x1", "x2", "x3", "kind_a", "kind_b", "kind_c"]
    assert table["bootstrap_share_nonzero"].between(0.0, 1.0).all()
    assert table["sign_agreement"].dropna().between(0.5, 1.0).all()


# -- (d) the figure -------------------------------------------------------------------------------


def test_stability_plot_is_a_figure_with_a_title():
    X, y, _ = _sparse_regression()
    setup = _setup(X, y, tol=1e-4)
    stab = stability(setup, Candidate(Penalty.l1, 1.0), n_bootstrap=3)
    fig = stability_plot(stab, title="Selection stability")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    assert fig.get_suptitle() == "Selection stability"
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sorted(labels) == sorted(stab.table.index)
    fig.canvas.draw()  # lays out and renders without a warning


def test_stability_plot_caps_the_features_drawn():
    X, y = make_regression(n_samples=60, n_features=120, n_informative=8, noise=5, random_state=0)
    stab = stability(_setup(X, y, tol=1e-4), Candidate(Penalty.l1, 1.0))
    fig = stability_plot(stab, title="wide", max_features=10)
    assert len(fig.axes[0].get_yticklabels()) == 10
    assert "110 more hidden" in fig.get_suptitle()
    fig.canvas.draw()
