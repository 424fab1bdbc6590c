from __future__ import annotations

import pandas as pd
import pytest

from pipeline.config import CsvData, DiabetesData, SeedRegressionData
from pipeline.data import feature_kinds, load
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
