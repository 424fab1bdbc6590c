"""Grouped rows (issue 15, item 3): ``split.strategy=group`` with ``data.group_column``
keeps each group on one side of the holdout and of every cross-validation fold, and the
group column is never a feature; bad groups are one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import client, one_error_line, run, runs_by_role

from pipeline import grouping
from pipeline.config import CsvData, SplitStrategy
from pipeline.data import load
from pipeline.search import CVSetup
from pipeline.split import holdout

FAST = ("search.n_trials=4", "holdout.n_bootstrap=50", "search.progress_bar=false")
GROUPED = ("split.strategy=group", "data.group_column=customer_id")


def _customers(n_groups: int = 40, seed: int = 0) -> pd.DataFrame:
    """Rows of customers, 2 to 9 rows each, with a per-customer shift of the target; a
    ``label`` column (yes/no) for classification."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 10, n_groups)
    customer = np.repeat([f"c{i:03d}" for i in range(n_groups)], sizes)
    X = rng.normal(size=(len(customer), 4))
    shift = np.repeat(rng.normal(scale=2.0, size=n_groups), sizes)
    y = X @ np.array([1.5, -2.0, 0.0, 0.5]) + shift + rng.normal(scale=0.5, size=len(customer))
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(4)])
    frame.insert(0, "customer_id", customer)
    frame["y"] = y
    frame["label"] = np.where(y > np.median(y), "yes", "no")
    return frame


def _write(frame: pd.DataFrame, where: Path) -> Path:
    csv = where / "customers.csv"
    frame.to_csv(csv, index=False)
    return csv


def _tune(store: Path, csv: Path, *extra: str):
    return run(store, "data=csv", f"data.path={csv}", "data.target=y", "data.drop=[label]",
               *extra, *FAST)  # fmt: skip


def _setup(parts, task, groups) -> CVSetup:
    return CVSetup.build(
        parts.X_train,
        parts.y_train,
        n_splits=5,
        random_state=0,
        scoring="neg_root_mean_squared_error" if task.value == "regression" else "neg_log_loss",
        numeric=list(parts.X_train.columns),
        categorical=[],
        max_iter=1000,
        tol=1e-4,
        task=task,
        groups=groups,
    )


def _shared(groups: pd.Series, a, b) -> set:
    return set(groups.iloc[a]) & set(groups.iloc[b])


@pytest.mark.parametrize("target", ["y", "label"])
def test_no_group_is_on_both_sides_of_the_holdout_or_of_any_fold(tmp_path, target):
    frame = _customers()
    other = "label" if target == "y" else "y"
    cfg = CsvData(path=str(_write(frame, tmp_path)), target=target, drop=[other])
    ds = load(CsvData(**{**cfg.__dict__, "group_column": "customer_id"}))
    assert "customer_id" not in ds.X.columns
    parts = holdout(ds, test_size=0.2, random_state=42, shuffle=True, strategy=SplitStrategy.group)
    assert set(parts.X_train.index).isdisjoint(parts.X_test.index)
    assert len(parts.X_train) + len(parts.X_test) == len(frame)
    assert not _shared(ds.groups, parts.X_train.index, parts.X_test.index)
    setup = _setup(parts, ds.task, parts.groups_train)
    validated = np.concatenate([test for _, test in setup.folds])
    assert sorted(validated) == list(range(len(parts.X_train)))  # every row validated once
    for train, test in setup.folds:
        assert not _shared(parts.groups_train, train, test)
    # The same rows split as independent rows do share groups: the check above can fail.
    plain = load(cfg)
    random_parts = holdout(plain, test_size=0.2, random_state=42, shuffle=True)
    groups = frame["customer_id"]
    assert _shared(groups, random_parts.X_train.index, random_parts.X_test.index)
    random_setup = _setup(random_parts, plain.task, None)
    train_groups = groups.iloc[random_parts.X_train.index].reset_index(drop=True)
    assert any(_shared(train_groups, tr, te) for tr, te in random_setup.folds)


def test_a_class_held_by_one_group_is_named():
    y = pd.Series(["a"] * 30 + ["b"] * 4, name="label")
    groups = pd.Series([f"g{i % 10}" for i in range(30)] + ["lonely"] * 4, name="customer_id")
    with pytest.raises(Exception, match="no row of class 'b' of 'label'"):
        grouping.folds(y, groups, n_splits=3, random_state=0, classify=True)


@pytest.mark.e2e
def test_make_tune_by_group_registers_a_model_without_the_group_column(tmp_path):
    csv = _write(_customers(), tmp_path)
    store = tmp_path / "store"
    result = _tune(store, csv, *GROUPED)
    assert result.returncode == 0, result.stderr
    (parent,) = runs_by_role(store)["study"]
    assert parent.data.params["split.strategy"] == "group"
    assert parent.data.params["data.group_column"] == "customer_id"
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    model = mlflow.sklearn.load_model("models:/customers@champion")
    assert list(model.feature_names_in_) == ["x0", "x1", "x2", "x3"]
    # The same study again is resumed, not run twice; the grouping is part of the study.
    again = _tune(store, csv, *GROUPED)
    assert again.returncode == 0, again.stderr
    assert len(runs_by_role(store)["study"]) == 1
    assert len(client(store).search_model_versions("name = 'customers'")) == 1


def _single(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(customer_id="c000")


def _missing(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[[3, 7], "customer_id"] = np.nan
    return frame


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("change", "extra", "culprit"),
    [
        (_single, GROUPED, "column 'customer_id' of {csv} has a single group 'c000'"),
        (_missing, GROUPED, "has 2 missing value(s), first at line 5; every row needs a group"),
        (None, (*GROUPED, "search.n_splits=35"), "has 40 groups; the holdout takes 8"),
        (None, ("split.strategy=group",), "split.strategy=group needs data.group_column"),
        (None, ("data.group_column=customer_id",), "set split.strategy=group"),
        (None, ("split.strategy=group", "data.group_column=shop"), "column 'shop' not found"),
        (None, ("split.strategy=group", "data.group_column=y"), "column 'y' is the target"),
    ],
)
def test_bad_groups_are_one_line_and_nothing_is_written(tmp_path, change, extra, culprit):
    frame = _customers()
    csv = _write(change(frame) if change else frame, tmp_path)
    store = tmp_path / "store"
    line = one_error_line(_tune(store, csv, *extra))
    assert culprit.format(csv=csv) in line, line
    assert not store.exists() or not any(store.glob("*.db"))
