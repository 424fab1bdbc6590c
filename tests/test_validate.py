from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import CsvData, Missing, Task
from pipeline.data import Dataset
from pipeline.errors import UserError
from pipeline.validate import check


def _dataset(X: pd.DataFrame, y: pd.Series, task: Task = Task.regression) -> Dataset:
    return Dataset(X, y, "t", "t.csv", task=task)


def _check(ds: Dataset, **data) -> Dataset:
    cfg = CsvData(path="t.csv", target="y", **data)
    return check(ds, data=cfg, n_splits=5, test_size=0.2)


def _good(n: int = 20) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)}), pd.Series(
        rng.normal(size=n), name="y"
    )


def test_good_data_passes():
    ds = _dataset(*_good())
    assert _check(ds) is ds


def _nan_in_a(X, y):
    X.loc[3, "a"] = np.nan
    X.loc[4, "a"] = np.nan
    return X, y


def _inf_in_b(X, y):
    X.loc[0, "b"] = np.inf
    return X, y


def _text_target(X, y):
    return X, pd.Series(["a"] * len(X), name="y")


def _missing_target(X, y):
    y = y.copy()
    y.iloc[0] = np.nan
    return X, y


def _duplicate_columns(X, y):
    X = pd.concat([X, X[["a"]]], axis=1)
    return X, y


@pytest.mark.parametrize(
    ("breaker", "message"),
    [
        (_nan_in_a, r"missing values in t.csv: 'a' \(2\)"),
        (_inf_in_b, r"column 'b' in t.csv has 1 infinite values"),
        (_text_target, r"data.target: column 'y' in t.csv is not numeric \(value 'a'\)"),
        (_duplicate_columns, r"column 'a' appears more than once"),
        (lambda X, y: (X.iloc[:0], y.iloc[:0]), r"t.csv has no rows"),
        (lambda X, y: (X.iloc[:, :0], y), r"t.csv has no feature columns"),
        (lambda X, y: (X.iloc[:5], y.iloc[:5]), r"has 5 rows; .* leaves 4 for training, fewer"),
    ],
)
def test_bad_data_names_the_fault(breaker, message):
    X, y = breaker(*_good())
    with pytest.raises(UserError, match=message):
        _check(_dataset(X, y))


def _labels(n: int = 40) -> tuple[pd.DataFrame, pd.Series]:
    X, _ = _good(n)
    return X, pd.Series(np.where(np.arange(n) % 2, "yes", "no"), name="y")


@pytest.mark.parametrize(
    ("breaker", "message"),
    [
        (lambda X, y: (X, y.where(y == "never", "yes")), r"has a single class 'yes'"),
        (
            lambda X, y: (X, y.where(y.index > 3, "rare")),
            r"class 'rare' of 'y' in t.csv has 4 rows, too few for search.n_splits=5",
        ),
        (lambda X, y: (X.assign(copy=y), y), r"column 'copy' in t.csv is a copy of the target"),
        (
            lambda X, y: (X.assign(id=[f"u{i}" for i in range(len(X))]), y),
            r"column 'id' in t.csv looks like an id",
        ),
        (
            lambda X, y: (X.assign(empty=np.nan), y),
            r"column 'empty' in t.csv has no values at all",
        ),
    ],
)
def test_bad_classification_data_names_the_fault(breaker, message):
    X, y = breaker(*_labels())
    with pytest.raises(UserError, match=message):
        _check(_dataset(X, y, Task.classification), max_categories=5)


def test_boolean_target_for_regression_says_so():
    X, _ = _good()
    y = pd.Series([True, False] * 10, name="y")
    with pytest.raises(UserError, match=r"column 'y' in t.csv is boolean"):
        _check(_dataset(X, y))


def test_a_copy_of_the_target_with_another_dtype_is_leakage():
    X, _ = _good()
    y = pd.Series(np.arange(20, dtype=float), name="y")
    with pytest.raises(UserError, match=r"'copy' in t.csv is a copy of the target"):
        _check(_dataset(X.assign(copy=np.arange(20)), y))


def test_unshuffled_holdout_must_hold_every_class():
    X, _ = _labels(40)
    y = pd.Series(["a"] * 32 + ["b"] * 8, name="y")  # the last 8 rows are all "b"
    ds = _dataset(X, y, Task.classification)
    with pytest.raises(UserError, match=r"split.shuffle=false the holdout rows .* class 'a'"):
        check(ds, data=CsvData(path="t.csv", target="y"), n_splits=2, test_size=0.2, shuffle=False)
    check(ds, data=CsvData(path="t.csv", target="y"), n_splits=2, test_size=0.2)


def test_labels_in_messages_are_plain_values():
    X, _ = _good(40)
    y = pd.Series(np.array([3] * 40), name="y")
    with pytest.raises(UserError, match=r"single class 3;"):
        _check(_dataset(X, y, Task.classification))


def test_high_cardinality_category_is_refused_above_the_limit():
    X, y = _labels(60)
    X = X.assign(city=[f"c{i % 12}" for i in range(60)])
    with pytest.raises(UserError, match=r"'city' in t.csv has 12 categories, more than"):
        _check(_dataset(X, y, Task.classification), max_categories=10)
    assert "city" in _check(_dataset(X, y, Task.classification), max_categories=12).X


def test_declared_numeric_column_with_text_names_the_value():
    X, y = _good()
    X = X.assign(price=["1.5"] * 19 + ["n/a"]).astype({"price": "str"})
    with pytest.raises(UserError, match=r"data.numeric: column 'price' .* holds 'n/a' \(row 19\)"):
        _check(_dataset(X, y), numeric=["price"])


def test_missing_values_are_allowed_when_imputing():
    X, y = _nan_in_a(*_good())
    with pytest.raises(UserError, match=r"set data.missing=impute"):
        _check(_dataset(X, y))
    _check(_dataset(X, y), missing=Missing.impute)


def test_constant_columns_are_dropped_with_a_warning(caplog):
    X, y = _good()
    ds = _check(_dataset(X.assign(flat=1.0, same="x"), y))
    assert list(ds.X.columns) == ["a", "b"]
    assert "dropping constant columns of t.csv: 'flat', 'same'" in caplog.text


def test_numbers_with_a_stray_word_are_named_not_treated_as_categories():
    X, y = _good(40)
    size = [str(v) for v in range(40)]
    size[7] = "unknown"
    with pytest.raises(UserError, match=r"'size' in t.csv is numeric but for 'unknown' \(row 7\)"):
        _check(_dataset(X.assign(size=size), y))
    codes = X.assign(code=[f"{i % 4:02d}" for i in range(40)])  # text of digits: categories
    assert "code" in _check(_dataset(codes, y)).X
