"""Tables of one's own on the command line: declared categories, file line numbers in
messages, id columns, every problem of a table at once, nested Parquet columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import client, one_error_line, run, runs_by_role

pytestmark = pytest.mark.e2e

FAST = ("search.n_trials=3", "holdout.n_bootstrap=50")
ROTARY_ROW = 32  # the data row of the one word in the column of cylinders: line 34


def _cars(n: int = 60, *, rotary: bool = True) -> pd.DataFrame:
    """Cars with an id, integer and float measurements, cylinders and a word among them."""
    rng = np.random.default_rng(0)
    cyl = rng.choice([3, 4, 5, 6, 8], n)
    if rotary:
        cyl = cyl.astype(object)
        cyl[ROTARY_ROW] = "rotary"
    frame = pd.DataFrame(
        {
            "car_id": np.arange(1, n + 1),
            "weight": rng.integers(1500, 2500, n),
            "hp": rng.normal(100, 20, n).round(1),
            "cyl": cyl,
        }
    )
    effect = pd.Series(cyl).map({3: 2.0, 4: 1.0, 5: 0.0, 6: -1.0, 8: -3.0}).fillna(4.0)
    frame["mpg"] = 50 - frame["weight"] / 100 + effect + rng.normal(0, 0.5, n)
    return frame


def _tune(store: Path, csv: Path, *extra: str):
    return run(store, "data=csv", f"data.path={csv}", "data.target=mpg", *FAST, *extra)


@pytest.fixture(scope="module")
def declared(tmp_path_factory):
    """A study on cars whose cylinders are declared a category."""
    where = tmp_path_factory.mktemp("cars")
    csv = where / "cars.csv"
    _cars().to_csv(csv, index=False)
    store = where / "store"
    result = _tune(store, csv, "data.categorical=[cyl]", "registry.model_name=cars")
    return store, result


def test_a_declared_category_of_numbers_and_a_word_is_one_hot_encoded(declared, tmp_path):
    store, result = declared
    assert result.returncode == 0, result.stderr
    (parent,) = runs_by_role(store)["study"]
    path = client(store).download_artifacts(parent.info.run_id, "coefficients.csv", str(tmp_path))
    features = set(pd.read_csv(path).iloc[:, 0])
    assert {"cyl_3", "cyl_4", "cyl_8", "cyl_rotary", "weight", "hp"} <= features
    assert "cyl" not in features


def test_a_numeric_id_column_is_named_in_a_warning(declared):
    _, result = declared
    warned = [line for line in result.stderr.splitlines() if "looks like an id" in line]
    assert len(warned) == 1 and "'car_id'" in warned[0] and "data.drop" in warned[0], warned


def test_integer_columns_bring_no_mlflow_schema_hint(declared):
    _, result = declared
    assert result.returncode == 0, result.stderr
    assert "Inferred schema contains integer column" not in result.stderr


def _predict(store: Path, rows: pd.DataFrame, where: Path):
    source, out = where / "new.csv", where / "scored.csv"
    rows.to_csv(source, index=False)
    result = run(
        store,
        "job=predict",
        "registry.model_name=cars",
        "predict.alias=challenger",
        f"predict.input={source}",
        f"predict.output={out}",
    )
    assert result.returncode == 0, result.stderr
    return pd.read_csv(out)


def test_the_model_predicts_raw_rows_whose_category_reads_as_numbers(declared, tmp_path):
    store, _ = declared
    rows = _cars(rotary=False).drop(columns="mpg").head(12)
    # The same car with 4 and with 8 cylinders: 8 cost 4 mpg against 4 (one-hot, not a slope).
    rows = pd.concat([rows, rows.iloc[[0]].assign(cyl=4), rows.iloc[[0]].assign(cyl=8)])
    assert pd.api.types.is_integer_dtype(rows["cyl"])  # as pandas reads the file, too
    scored = _predict(store, rows, tmp_path)
    assert len(scored) == 14 and scored["prediction"].notna().all()
    four, eight = scored["prediction"].iloc[-2:]
    assert four - eight > 1.5


def test_a_word_among_numbers_names_the_file_line_and_data_categorical(tmp_path):
    csv = tmp_path / "cars.csv"
    _cars().to_csv(csv, index=False)
    assert csv.read_text().splitlines()[ROTARY_ROW + 1].split(",")[3] == "rotary"  # line 34
    line = one_error_line(_tune(tmp_path / "store", csv))
    assert "column 'cyl'" in line and "'rotary' (line 34)" in line
    assert "data.categorical=[cyl]" in line and "data.numeric" in line


@pytest.mark.parametrize(
    ("extra", "culprit"),
    [
        (["data.categorical=[cyl]", "data.numeric=[cyl]"], "'cyl' is also listed in data.numeric"),
        (["data.categorical=[mpg]"], "data.categorical: column 'mpg' is the target"),
    ],
)
def test_a_wrong_data_categorical_is_one_line_naming_the_column(tmp_path, extra, culprit):
    csv = tmp_path / "cars.csv"
    _cars().to_csv(csv, index=False)
    store = tmp_path / "store"
    assert culprit in one_error_line(_tune(store, csv, *extra))
    assert not store.exists() or not any(store.glob("*.db"))


def test_every_problem_of_a_table_is_named_at_once(tmp_path):
    frame = _cars(rotary=False).astype({"weight": float})
    frame.loc[[4, 9], "hp"] = np.nan
    frame.loc[7, "weight"] = np.inf
    csv = tmp_path / "cars.csv"
    frame.to_csv(csv, index=False)
    store = tmp_path / "store"
    result = _tune(store, csv)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"error: data: 2 problems in {csv}:", result.stderr
    assert len(lines) == 3, result.stderr
    assert "missing values" in lines[1] and "'hp' (2, first line 6)" in lines[1]
    assert "data.missing=impute" in lines[1]
    assert "column 'weight' has 1 infinite values" in lines[2]
    assert not store.exists() or not any(store.glob("*.db"))


def test_a_nested_parquet_column_is_named_not_a_crash(tmp_path):
    frame = _cars(rotary=False)
    frame["tags"] = [[1, 2] if i % 2 else [3] for i in range(len(frame))]
    path = tmp_path / "cars.parquet"
    frame.to_parquet(path)
    store = tmp_path / "store"
    line = one_error_line(_tune(store, path))
    assert "column 'tags'" in line and "holds lists" in line and "data.drop" in line
    assert not store.exists() or not any(store.glob("*.db"))


def test_the_registered_version_is_the_chosen_candidate_refitted_on_all_rows(declared, tmp_path):
    """Issue 17: the holdout judges the fit on the training rows; the registry gets the same
    candidate fitted on every row of the file."""
    import mlflow
    from sklearn.base import clone

    store, result = declared
    c = client(store)
    (version,) = c.search_model_versions("name = 'cars'")
    assert version.tags["fitted_on"] == "all 60 rows (48 training + 12 holdout)"
    assert "refitted on all 60 rows" in result.stdout
    (parent,) = runs_by_role(store)["study"]
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    judged = mlflow.sklearn.load_model(f"runs:/{parent.info.run_id}/best_model")
    registered = mlflow.sklearn.load_model("models:/cars/1")
    assert _logged_model(store, parent, "model_all_rows") in version.source
    rows = pd.read_csv(store.parent / "cars.csv")  # the file the fixture tuned on
    X, y = rows.drop(columns="mpg"), rows["mpg"]
    expected = clone(judged).fit(X, y).predict(X)  # the same pipeline, fitted on all 60 rows
    np.testing.assert_allclose(registered.predict(X), expected, rtol=1e-4)
    assert not np.allclose(registered.predict(X), judged.predict(X), rtol=1e-4)


def test_refit_all_rows_false_registers_the_fit_the_holdout_judged(tmp_path):
    csv = tmp_path / "cars.csv"
    _cars(rotary=False).to_csv(csv, index=False)
    store = tmp_path / "store"
    result = _tune(store, csv, "registry.refit_all_rows=false", "data.drop=[car_id]")
    assert result.returncode == 0, result.stderr
    (version,) = client(store).search_model_versions("name = 'cars'")
    assert version.tags["fitted_on"] == "the 48 training rows"
    (parent,) = runs_by_role(store)["study"]
    assert _logged_model(store, parent, "best_model") in version.source
    assert "refitted on all" not in result.stdout


def _logged_model(store: Path, run, name: str) -> str:
    (model,) = client(store).search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}' AND name = '{name}'",
    )
    return model.model_id
