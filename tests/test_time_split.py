"""Rows in time order (issue 15, item 2): ``split.strategy=time`` with ``data.time_column``
puts the rows in time order, holds out the latest, chains the folds forward (no fold
trains on a row later than it validates on), leaves ``split.gap`` rows out between them,
and never makes the time a feature; bad times are one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import client, one_error_line, run, runs_by_role

from pipeline import rowkeys
from pipeline.config import CsvData, SplitStrategy, Task
from pipeline.data import Dataset, load
from pipeline.search import CVSetup
from pipeline.split import holdout

FAST = ("search.n_trials=4", "holdout.n_bootstrap=50", "search.progress_bar=false")
TIMED = ("split.strategy=time", "data.time_column=day")
N_DAYS = 120


def _sales(seed: int = 0) -> pd.DataFrame:
    """Daily sales with a trend, written in shuffled order, dates as text."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", periods=N_DAYS, freq="D")
    X = rng.normal(size=(N_DAYS, 3))
    y = X @ np.array([1.0, -1.0, 0.5]) + np.linspace(0, 3, N_DAYS) + rng.normal(0, 0.3, N_DAYS)
    frame = pd.DataFrame(X, columns=["price", "promo", "temp"])
    frame.insert(0, "day", days.strftime("%Y-%m-%d"))
    frame["sales"] = y
    return frame.sample(frac=1, random_state=seed).reset_index(drop=True)


def _write(frame: pd.DataFrame, where: Path) -> Path:
    csv = where / "sales.csv"
    frame.to_csv(csv, index=False)
    return csv


def _setup(parts, time_gap) -> CVSetup:
    return CVSetup.build(
        parts.X_train,
        parts.y_train,
        n_splits=5,
        random_state=0,
        scoring="neg_root_mean_squared_error",
        numeric=list(parts.X_train.columns),
        categorical=[],
        max_iter=1000,
        tol=1e-4,
        time_gap=time_gap,
    )


def test_no_fold_trains_on_a_row_later_than_it_validates_on(tmp_path):
    frame = _sales()
    csv = _write(frame, tmp_path)
    ds = load(CsvData(path=str(csv), target="sales", time_column="day"))
    assert "day" not in ds.X.columns
    assert ds.times.is_monotonic_increasing and len(ds.times) == N_DAYS
    earliest = int(pd.to_datetime(frame["day"]).argmin())
    assert ds.row_label(0) == f"line {earliest + 2}"  # still named by its line in the file
    parts = holdout(
        ds, test_size=0.2, random_state=42, shuffle=False, strategy=SplitStrategy.time, gap=2
    )
    assert (len(parts.X_train), len(parts.X_test)) == (N_DAYS - 24 - 2, 24)
    train_days, test_days = ds.times.iloc[parts.X_train.index], ds.times.iloc[parts.X_test.index]
    assert (test_days.min() - train_days.max()).days == 3  # two days left out between
    days = train_days.reset_index(drop=True)
    setup = _setup(parts, time_gap=2)
    for train, test in setup.folds:
        assert days.iloc[train].max() < days.iloc[test].min()
        assert test.min() - train.max() == 3
    # Folds of independent rows do train on later rows: the check above can fail.
    shuffled = _setup(parts, time_gap=None)
    assert any(days.iloc[tr].max() > days.iloc[te].min() for tr, te in shuffled.folds)


def test_a_class_the_earliest_rows_lack_is_named():
    y = pd.Series(["a"] * 20 + ["b"] * 20, name="label")
    with pytest.raises(Exception, match="no row of class 'b' of 'label'; the earliest rows"):
        rowkeys.time_folds(y, n_splits=4, gap=0, classify=True)


@pytest.mark.e2e
def test_make_tune_in_time_order_registers_a_model_without_the_time_column(tmp_path):
    csv = _write(_sales(), tmp_path)
    store = tmp_path / "store"
    result = run(
        store, "data=csv", f"data.path={csv}", "data.target=sales", *TIMED, "split.gap=2", *FAST
    )
    assert result.returncode == 0, result.stderr
    (parent,) = runs_by_role(store)["study"]
    assert parent.data.params["split.strategy"] == "time"
    assert parent.data.params["split.shuffle"] == "False"
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    (version,) = client(store).search_model_versions("name = 'sales'")
    assert version.tags["fitted_on"] == "all 120 rows (94 training + 24 holdout + 2 between them)"
    model = mlflow.sklearn.load_model("models:/sales/1")
    assert list(model.feature_names_in_) == ["price", "promo", "temp"]
    assert "94 training rows, 24 holdout rows" in result.stdout


def _bad_day(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[5, "day"] = "yesterday"
    return frame


def _no_day(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[[2, 9], "day"] = np.nan
    return frame


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("change", "extra", "culprit"),
    [
        (_bad_day, TIMED, "1 value(s) that are not dates, first 'yesterday' (line 7)"),
        (_no_day, TIMED, "has 2 missing value(s), first at line 4; every row needs a time"),
        (None, (*TIMED, "split.gap=100"), "nothing is left for training"),
        (None, (*TIMED, "split.gap=80"), "split.gap=80: 16 training rows"),
        (None, ("split.strategy=time", "data.time_column=when"), "column 'when' not found"),
        (None, ("split.gap=3",), "only split.strategy=time leaves a gap"),
    ],
)
def test_bad_times_are_one_line_and_nothing_is_written(tmp_path, change, extra, culprit):
    frame = _sales()
    csv = _write(change(frame) if change else frame, tmp_path)
    store = tmp_path / "store"
    line = one_error_line(
        run(store, "data=csv", f"data.path={csv}", "data.target=sales", *extra, *FAST)
    )
    assert culprit in line, line
    assert not store.exists() or not any(store.glob("*.db"))


def test_numbers_are_times_too():
    frame = pd.DataFrame({"t": [3, 1, 2], "x": [30.0, 10.0, 20.0], "y": [3.0, 1.0, 2.0]})
    ds = rowkeys.split_off(
        Dataset(frame[["t", "x"]], frame["y"], "n", "numbers", Task.regression),
        group_column=None,
        time_column="t",
    )
    assert ds.X["x"].tolist() == [10.0, 20.0, 30.0] and ds.y.tolist() == [1.0, 2.0, 3.0]
