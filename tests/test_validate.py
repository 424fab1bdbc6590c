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
        (_nan_in_a, r"missing values in t.csv: 'a' \(2, first line 5\)"),
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
    with pytest.raises(UserError, match=r"data.numeric: column 'price' .* holds 'n/a' \(line 21\)"):
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
    with pytest.raises(UserError, match=r"'size' in t.csv is numeric but for 'unknown' \(line 9\)"):
        _check(_dataset(X.assign(size=size), y))
    codes = X.assign(code=[f"{i % 4:02d}" for i in range(40)])  # text of digits: categories
    assert "code" in _check(_dataset(codes, y)).X


def test_every_problem_of_a_table_is_named_in_one_error():
    X, y = _good(40)
    X.loc[[3, 5], "a"] = np.nan
    X.loc[0, "b"] = np.inf
    size = [str(v) for v in range(40)]
    size[7] = "unknown"
    X = X.assign(size=size, user=[f"u{i}" for i in range(40)], copy=y)
    with pytest.raises(UserError) as caught:
        _check(_dataset(X, y), max_categories=10)
    lines = str(caught.value).splitlines()
    assert lines[0] == "data: 5 problems in t.csv:"
    assert lines[1:] == [
        "  data: missing values: 'a' (2, first line 5); "
        "set data.missing=impute to fill them inside the model",
        "  data: column 'b' has 1 infinite values",
        "  data: column 'size' is numeric but for 'unknown' (line 9); fix those values, list the "
        "column in data.numeric to have them named, or declare it a category with "
        "data.categorical=[size]",
        "  data: column 'user' looks like an id (every value is different); "
        "list it in data.drop or leave it out of data.features",
        "  data: column 'copy' is a copy of the target 'y' (leakage); drop it with data.drop",
    ]


def test_a_table_too_small_is_a_problem_of_the_table_among_the_others():
    X, y = _good(5)
    X.loc[1, "a"] = np.inf
    with pytest.raises(UserError, match=r"2 problems in t.csv:\n") as caught:
        _check(_dataset(X, y))
    assert "\n  data: the table has 5 rows; with split.test_size=0.2" in str(caught.value)


def test_rows_are_lines_of_a_csv_file_and_rows_of_other_sources():
    X, y = _good(40)
    size = [str(v) for v in range(40)]
    size[7] = "unknown"
    X = X.assign(size=size)
    for source, where in (("t.parquet", "row 7"), ("sklearn.datasets.load_wine", "row 7")):
        with pytest.raises(UserError, match=rf"'unknown' \({where}\)"):
            _check(Dataset(X, y, "t", source))
    # Rows of a missing target were left out: the row is the source's, not X's.
    shifted = Dataset(X, y, "t", "t.parquet", n_rows_dropped=3, positions=np.arange(40) + 3)
    with pytest.raises(UserError, match=r"'unknown' \(row 10\)"):
        _check(shifted)


def test_a_declared_category_of_numbers_and_words_is_not_refused():
    from pipeline.data import as_categories

    X, y = _good(40)
    cyl = [3, 4, 5, 6, 8] * 8
    cyl[32] = "rotary"
    X = X.assign(cyl=pd.Series(cyl, dtype=object))
    with pytest.raises(UserError, match=r"data.categorical=\[cyl\]"):
        _check(_dataset(X, y))
    declared = _dataset(as_categories(X, ["cyl"]), y)
    assert "cyl" in _check(declared, categorical=["cyl"]).X


def _nested(n: int = 20) -> pd.DataFrame:
    X, _ = _good(n)
    return X.assign(
        tags=[np.array([1, 2]) if i % 2 else np.array([3]) for i in range(n)],
        where=[{"x": i, "y": 1} for i in range(n)],
    )


def test_nested_columns_are_named_not_a_crash():
    X, y = _good()
    with pytest.raises(UserError) as caught:
        _check(_dataset(_nested(), y))
    lines = str(caught.value).splitlines()
    assert lines[0] == "data: 2 problems in t.csv:"
    assert lines[1] == (
        "  data: column 'tags' holds lists (a nested Parquet type); "
        "flatten it or list it in data.drop"
    )
    assert lines[2].startswith("  data: column 'where' holds structs")
    with pytest.raises(UserError, match=r"data.target: column 'tags' in t.csv holds lists"):
        _check(_dataset(X, _nested()["tags"].rename("tags"), Task.classification))


def test_a_numeric_id_is_named_in_a_warning_unless_declared_numeric(caplog):
    X, y = _good(40)
    X = X.assign(row=np.arange(100, 140), grams=np.linspace(1, 2, 40) ** 2)
    assert "row" in _check(_dataset(X, y)).X  # kept: it may be a count or a year
    warned = [r.getMessage() for r in caplog.records if "looks like an id" in r.getMessage()]
    assert warned == [
        "column 'row' of t.csv looks like an id (every value is a different whole number); "
        "list it in data.drop, or in data.numeric if it is a measurement"
    ]
    caplog.clear()
    _check(_dataset(X, y), numeric=["row"])
    assert "looks like an id" not in caplog.text


def test_a_table_with_errors_reports_them_not_the_id_warning(caplog):
    X, y = _nan_in_a(*_good(40))
    with pytest.raises(UserError, match=r"missing values"):
        _check(_dataset(X.assign(row=np.arange(40)), y))
    assert "looks like an id" not in caplog.text
