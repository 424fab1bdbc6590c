from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import (
    BreastCancerData,
    CsvData,
    DiabetesData,
    SeedClassificationData,
    SeedRegressionData,
    Task,
    WineData,
)
from pipeline.data import feature_kinds, infer_task, load
from pipeline.errors import UserError


def test_seed_regression_is_make_regression():
    ds = load(SeedRegressionData(n_samples=30, n_features=12, random_state=1))
    assert ds.X.shape == (30, 12)
    assert list(ds.X.columns[:2]) == ["x00", "x01"]
    assert ds.y.shape == (30,)
    assert ds.digest == load(SeedRegressionData(n_samples=30, n_features=12, random_state=1)).digest
    assert ds.digest != load(SeedRegressionData(n_samples=30, n_features=12, random_state=2)).digest


def test_diabetes_is_bundled():
    ds = load(DiabetesData())
    assert ds.X.shape == (442, 10)
    assert "bmi" in ds.X.columns
    assert ds.task == Task.regression


@pytest.mark.parametrize(
    ("cfg", "shape", "classes"),
    [
        (SeedClassificationData(n_samples=50, n_classes=3), (50, 20), [0, 1, 2]),
        (BreastCancerData(), (569, 30), ["benign", "malignant"]),
        (WineData(), (178, 13), ["class_0", "class_1", "class_2"]),
    ],
)
def test_classification_sources(cfg, shape, classes):
    ds = load(cfg)
    assert ds.X.shape == shape
    assert ds.task == Task.classification
    assert ds.classes == classes


@pytest.mark.parametrize(
    ("y", "task"),
    [
        (pd.Series([1.5, 2.25, 3.0]), Task.regression),
        (pd.Series(range(30)), Task.regression),
        (pd.Series([0, 1, 1, 0]), Task.classification),
        (pd.Series([0.0, 1.0, 2.0]), Task.classification),
        (pd.Series(["a", "b"]), Task.classification),
        (pd.Series([True, False]), Task.classification),
    ],
)
def test_task_is_inferred_from_the_target(y, task):
    assert infer_task(y) == task
    assert infer_task(y, Task.regression) == Task.regression


def test_rows_with_missing_target_are_dropped_and_counted(tmp_path, table):
    table.loc[[2, 5], "price"] = np.nan
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    ds = load(CsvData(path=str(path), target="price", drop=["noise"]))
    assert len(ds.X) == 58 and ds.n_rows_dropped == 2
    assert "noise" not in ds.X.columns


def test_repeated_header_names_are_caught_before_pandas_renames_them(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,a,y\n1,2,3,4\n")
    with pytest.raises(UserError, match=r"column 'a' appears more than once"):
        load(CsvData(path=str(path), target="y"))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_by_suffix_with_all_or_chosen_features(tmp_path, table, suffix):
    path = tmp_path / f"houses{suffix}"
    table.to_csv(path, index=False) if suffix == ".csv" else table.to_parquet(path)
    ds = load(CsvData(path=str(path), target="price"))
    assert list(ds.X.columns) == ["size", "rooms", "noise", "city"]
    assert ds.name == "houses"
    ds = load(CsvData(path=str(path), target="price", features=["size", "city"]))
    assert list(ds.X.columns) == ["size", "city"]
    numeric, categorical = feature_kinds(ds.X)
    assert (numeric, categorical) == (["size"], ["city"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "cost"}, r"data.target: column 'cost' not found in .*houses.csv"),
        ({"target": "price", "features": ["size", "floor"]}, r"data.features: column 'floor'"),
        ({"target": "price", "features": ["size", "price"]}, r"data.features: the target"),
    ],
)
def test_table_column_errors_name_the_column(tmp_path, table, kwargs, message):
    path = tmp_path / "houses.csv"
    table.to_csv(path, index=False)
    with pytest.raises(UserError, match=message):
        load(CsvData(path=str(path), **kwargs))


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(UserError, match=r"data.path: no such file: .*nope.csv"):
        load(CsvData(path=str(tmp_path / "nope.csv"), target="y"))
    (tmp_path / "a.xlsx").write_text("x")
    with pytest.raises(UserError, match=r"unsupported file type '.xlsx'"):
        load(CsvData(path=str(tmp_path / "a.xlsx"), target="y"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(UserError, match=r"data.path: cannot read .*empty.csv"):
        load(CsvData(path=str(tmp_path / "empty.csv"), target="y"))


def test_feature_kinds_sees_pandas_3_strings_booleans_and_categories():
    X = pd.DataFrame(
        {
            "n": [1.0, 2.0],
            "s": pd.array(["a", "b"], dtype="str"),
            "o": pd.Series(["a", "b"], dtype=object),
            "b": [True, False],
            "c": pd.Categorical(["x", "y"]),
        }
    )
    assert feature_kinds(X) == (["n"], ["s", "o", "b", "c"])


def test_declared_categories_become_text_whatever_their_values():
    from pipeline.data import as_categories

    X = pd.DataFrame(
        {
            "ints": [3, 4, 8],
            "floats": [3.0, np.nan, 8.5],
            "mixed": pd.Series([3, "03", "rotary"], dtype=object),
            "flag": [True, False, True],
            "n": [1.0, 2.0, 3.0],
        }
    )
    out = as_categories(X, ["ints", "floats", "mixed", "flag"])
    assert out["ints"].tolist() == ["3", "4", "8"]
    assert out["floats"].iloc[0] == "3" and pd.isna(out["floats"].iloc[1])
    assert out["floats"].iloc[2] == "8.5"
    assert out["mixed"].tolist() == ["3", "03", "rotary"]  # text stays as written
    assert out["flag"].tolist() == [True, False, True]
    assert feature_kinds(out) == (["n"], ["ints", "floats", "mixed", "flag"])
    assert as_categories(X, []) is X


def test_data_categorical_makes_a_column_of_numbers_categorical(tmp_path, table):
    table["cyl"] = [4, 6, 8] * 20
    path = tmp_path / "cars.csv"
    table.to_csv(path, index=False)
    assert "cyl" in feature_kinds(load(CsvData(path=str(path), target="price")).X)[0]
    ds = load(CsvData(path=str(path), target="price", categorical=["cyl", "rooms"]))
    numeric, categorical = feature_kinds(ds.X)
    assert categorical == ["rooms", "city", "cyl"] and numeric == ["size", "noise"]
    assert sorted(ds.X["cyl"].unique()) == ["4", "6", "8"]
    assert set(ds.X["rooms"]) <= {"1", "2", "3", "4", "5"}  # floats 1.0 ... 5.0 in the file
    wine = load(WineData(categorical=["magnesium"]))
    assert "magnesium" in feature_kinds(wine.X)[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"categorical": ["cylinders"]}, r"data.categorical: column 'cylinders' not found in"),
        (
            {"categorical": ["city"], "features": ["size"]},
            r"data.categorical: column 'city' is not a feature column of .*houses.csv",
        ),
    ],
)
def test_a_declared_category_that_is_not_a_feature_is_named(tmp_path, table, kwargs, message):
    path = tmp_path / "houses.csv"
    table.to_csv(path, index=False)
    with pytest.raises(UserError, match=message):
        load(CsvData(path=str(path), target="price", **kwargs))


def test_a_declared_category_of_a_bundled_data_set_is_checked_too():
    with pytest.raises(UserError, match=r"data.categorical: column 'target' is the target"):
        load(WineData(categorical=["target"]))
    with pytest.raises(UserError, match=r"column 'colour' is not a feature column of sklearn"):
        load(WineData(categorical=["colour"]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.numeric=[cyl]"], r"data.categorical: column 'cyl' is also listed in data.numeric"),
        (["data.drop=[cyl]"], r"data.categorical: column 'cyl' is also listed in data.drop"),
        (["data.target=cyl"], r"data.categorical: column 'cyl' is the target \(data.target\)"),
    ],
)
def test_data_categorical_is_checked_against_the_other_lists(make_config, overrides, message):
    from pipeline import constraints

    base = ["data=csv", "data.path=cars.csv", "data.target=mpg", "data.categorical=[cyl]"]
    cfg = make_config(*base, *overrides)
    assert cfg.data.categorical == ["cyl"]
    with pytest.raises(UserError, match=message):
        constraints.validate(cfg)


def test_rows_of_a_csv_file_are_named_by_their_line(tmp_path):
    path = tmp_path / "t.csv"
    # A blank line (skipped by pandas) and a quoted value over two lines; row 2 has no target.
    path.write_text('a,b,y\n1,x,1.5\n\n2,"two\nlines",2.5\n3,z,\n4,w,3.5\n')
    ds = load(CsvData(path=str(path), target="y"))
    assert ds.X["a"].tolist() == [1, 2, 4] and ds.n_rows_dropped == 1
    assert [ds.row_label(i) for i in range(3)] == ["line 2", "line 4", "line 7"]
    unread = type(ds)(ds.X, ds.y, "t", str(tmp_path / "gone.csv"))
    assert unread.row_label(2) == "line 4"  # no file to read: header + row
    parquet = tmp_path / "t.parquet"
    pd.read_csv(path).to_parquet(parquet)
    assert load(CsvData(path=str(parquet), target="y")).row_label(2) == "row 3"


def test_numeric_ids_are_whole_numbers_all_different_without_gaps_or_named_so():
    from pipeline.data import numeric_ids

    rng = np.random.default_rng(0)
    n = 60
    X = pd.DataFrame(
        {
            "row": np.arange(n),
            "whole_floats": np.arange(n) * 1.0 + 1000,
            "customer_id": rng.choice(10**6, n, replace=False),
            "userId": rng.choice(10**6, n, replace=False),
            "weight": rng.choice(np.arange(1500, 2500), n, replace=False),
            "income": rng.normal(50, 10, n),
            "age": rng.integers(18, 80, n),
            "paid": rng.choice(10**6, n, replace=False),
            "flag": [True, False] * 30,
        }
    )
    assert numeric_ids(X) == ["row", "whole_floats", "customer_id", "userId"]
    assert numeric_ids(X, declared=["row"]) == ["whole_floats", "customer_id", "userId"]
    assert numeric_ids(X.head(19)) == []
