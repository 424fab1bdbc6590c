"""The estimator factory, and the solver arguments it gives the fast paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge

from pipeline.config import Penalty, Task
from pipeline.evaluate import coefficients
from pipeline.models import (
    Candidate,
    alpha_at,
    enet_penalties,
    l1_share,
    logistic_C,
    logistic_penalties,
    make_estimator,
    ridge_penalty,
)


@pytest.mark.parametrize(
    ("candidate", "kind"),
    [
        (Candidate(Penalty.l1, 0.5), Lasso),
        (Candidate(Penalty.l2, 0.5), Ridge),
        (Candidate(Penalty.elasticnet, 0.5, 0.3), ElasticNet),
        (None, LinearRegression),
    ],
)
def test_each_penalty_gets_its_estimator(candidate, kind):
    model = make_estimator(candidate, numeric=["a"])[-1]
    assert type(model) is kind
    if candidate is not None:
        assert model.alpha == 0.5
    if kind is ElasticNet:
        assert model.l1_ratio == 0.3


@pytest.mark.parametrize(
    ("candidate", "l1_ratio", "solver"),
    [
        (Candidate(Penalty.l1, 0.5), 1.0, "saga"),
        (Candidate(Penalty.l2, 0.5), 0.0, "lbfgs"),
        (Candidate(Penalty.elasticnet, 0.5, 0.3), 0.3, "saga"),
    ],
)
def test_classification_penalty_is_l1_ratio_and_c_is_one_over_alpha(candidate, l1_ratio, solver):
    model = make_estimator(candidate, task=Task.classification, numeric=["a"])[-1]
    assert type(model) is LogisticRegression
    assert pytest.approx(2.0) == model.C
    assert (model.l1_ratio, model.solver) == (l1_ratio, solver)
    assert model.penalty == "deprecated"  # never the argument scikit-learn 1.8 deprecated
    assert type(make_estimator(None, task=Task.classification, numeric=["a"])[-1]) is (
        DummyClassifier
    )


def test_string_labels_come_back_as_labels(table):
    X = table[["size", "rooms"]]
    y = np.where(table["price"] > table["price"].median(), "dear", "cheap")
    model = make_estimator(
        Candidate(Penalty.l1, 0.1), task=Task.classification, numeric=["size", "rooms"]
    ).fit(X, y)  # FutureWarning would fail here
    assert set(model.predict(X)) <= {"dear", "cheap"}


def test_imputation_is_inside_the_pipeline(table):
    X = table.drop(columns="price").copy()
    X.loc[:4, "size"] = np.nan
    X.loc[5:9, "city"] = np.nan
    model = make_estimator(
        Candidate(Penalty.l2, 0.1),
        numeric=["size", "rooms", "noise"],
        categorical=["city"],
        impute=True,
    ).fit(X, table["price"])
    assert np.isfinite(model.predict(X)).all()
    numbers = model[0].named_transformers_["num"]
    assert numbers[0].statistics_[0] == pytest.approx(X["size"].median())


def test_elasticnet_needs_l1_ratio():
    with pytest.raises(ValueError, match="l1_ratio"):
        make_estimator(Candidate(Penalty.elasticnet, 0.5), numeric=["a"])


def test_standardizes_so_the_penalty_ignores_units():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    y = X["a"] + X["b"]
    est = make_estimator(Candidate(Penalty.l1, 0.1), numeric=["a", "b"])
    base = coefficients(est.fit(X, y))
    scaled = coefficients(est.fit(X.assign(b=X["b"] * 1000), y))
    np.testing.assert_allclose(base.to_numpy(), scaled.to_numpy(), rtol=1e-6)


def test_categories_are_one_hot_encoded_and_unknown_ones_ignored(table):
    X, y = table.drop(columns="price"), table["price"]
    est = make_estimator(
        Candidate(Penalty.l2, 0.1), numeric=["size", "rooms", "noise"], categorical=["city"]
    ).fit(X, y)
    coefs = coefficients(est)
    assert {"city_north", "city_south", "city_east", "size"} <= set(coefs.index)
    unseen = X.head(2).assign(city="west")
    assert np.isfinite(est.predict(unseen)).all()


def test_candidate_labels_and_params():
    assert Candidate(Penalty.l1, 0.012345).label == "l1 α=0.0123"
    en = Candidate(Penalty.elasticnet, 0.41, 0.7)
    assert en.label == "elasticnet α=0.41 r=0.7"
    assert en.params() == {"penalty": "elasticnet", "alpha": 0.41, "l1_ratio": 0.7}
    assert "l1_ratio" not in Candidate(Penalty.l2, 1.0).params()


@pytest.mark.parametrize(
    ("candidate", "share"),
    [
        (Candidate(Penalty.l1, 0.5), 1.0),
        (Candidate(Penalty.l2, 0.5), 0.0),
        (Candidate(Penalty.elasticnet, 0.5, 0.3), 0.3),
    ],
)
def test_solver_arguments_of_the_fast_paths(candidate, share):
    assert l1_share(candidate) == share
    l1, l2 = enet_penalties(candidate, 200)
    assert (l1, l2) == pytest.approx((0.5 * share * 200, 0.5 * (1 - share) * 200))
    assert logistic_penalties(candidate) == pytest.approx((0.5 * share, 0.5 * (1 - share)))
    assert logistic_C(candidate) == pytest.approx(2.0)
    assert ridge_penalty(candidate) == 0.5
    if share > 0:
        assert alpha_at(l1, candidate, 200) == pytest.approx(0.5)


def test_fast_path_arguments_agree_with_the_estimators():
    # The weights given to our solvers are the estimators' own objectives, scaled: n times
    # ElasticNet's, 1/C times LogisticRegression's.
    candidate = Candidate(Penalty.elasticnet, 0.4, 0.25)
    model = make_estimator(candidate, numeric=["a"])[-1]
    l1, l2 = enet_penalties(candidate, 10)
    assert (l1 / 10, l2 / 10) == pytest.approx(
        (model.alpha * model.l1_ratio, model.alpha * (1 - model.l1_ratio))
    )
    logistic = make_estimator(candidate, task=Task.classification, numeric=["a"])[-1]
    l1, l2 = logistic_penalties(candidate)
    assert (l1 * logistic.C, l2 * logistic.C) == pytest.approx(
        (logistic.l1_ratio, 1 - logistic.l1_ratio)
    )


def test_elasticnet_share_needs_l1_ratio():
    with pytest.raises(ValueError, match="l1_ratio"):
        l1_share(Candidate(Penalty.elasticnet, 0.5))


def test_a_multiclass_saga_fit_is_the_same_every_time():
    """Issue 17: saga visits the rows in a random order; two runs must fit the same model."""
    from sklearn.datasets import load_wine
    from sklearn.exceptions import ConvergenceWarning

    X, y = load_wine(return_X_y=True, as_frame=True)
    candidate = Candidate(Penalty.elasticnet, 0.05, 0.5)
    fits = []
    for _ in range(2):
        pipe = make_estimator(
            candidate, task=Task.classification, numeric=list(X.columns), max_iter=30
        )
        with pytest.warns(ConvergenceWarning):  # stopped early: where the order shows most
            fits.append(pipe.fit(X, y)[-1].coef_)
    np.testing.assert_array_equal(fits[0], fits[1])
