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
