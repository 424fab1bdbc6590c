"""The command line end to end, in real subprocesses, against temporary stores."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import PENALTY_PARAMS, cli, client, complete_trials, run, runs_by_role

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One small study run from a directory outside the project."""
    store = tmp_path_factory.mktemp("store")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    result = run(store, "search.n_trials=8", cwd=elsewhere)
    return store, result


def test_tune_exits_0_and_prints_the_summary(finished):
    _, result = finished
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "best " in out and "CV score" in out and "lasso_guess" in out and "unpenalized" in out
    assert "http://127.0.0.1:5000/#/experiments/" in out
    assert "Warning" not in result.stderr, result.stderr


def test_every_step_after_the_search_says_what_it_is_doing(finished):
    _, result = finished
    err = result.stderr
    steps = [
        "search done in ",
        "report: refitting trial ",
        "report: selection stability",
        "report: review figures",
        "report: logging the model, tables and figures on the parent run",
        "registry: registering the model as seed_regression",
        "registry: seed_regression v1 promoted",
    ]
    where = [err.find(step) for step in steps]
    assert -1 not in where and where == sorted(where), err


def test_every_trial_is_a_child_run_with_params_metrics_model_and_plot(finished):
    store, _ = finished
    runs = runs_by_role(store)
    (parent,) = runs["study"]
    trials = runs["trial"]
    assert len(trials) == 8
    numbers = sorted(int(t.data.tags["pipeline.trial_number"]) for t in trials)
    assert numbers == list(range(8))
    c = client(store)
    for t in trials:
        assert t.info.status == "FINISHED"
        assert t.data.tags["mlflow.parentRunId"] == parent.info.run_id
        penalty = t.data.params["penalty"]
        assert t.data.tags["penalty"] == penalty
        assert set(t.data.params) == PENALTY_PARAMS[penalty]
        assert {
            "cv_score_mean",
            "cv_score_std",
            "n_nonzero_coefs",
            "fit_time_s",
            *(f"cv_score_fold{i}" for i in range(5)),
        } <= set(t.data.metrics)
        assert {"coefficients.svg", "coefficients.csv"} <= {
            a.path for a in c.list_artifacts(t.info.run_id)
        }
        # The trial's model is a logged model of its run (MLflow 3), with its metrics.
        (model,) = c.search_logged_models(
            experiment_ids=[t.info.experiment_id],
            filter_string=f"source_run_id = '{t.info.run_id}'",
        )
        assert model.name == "model" and "cv_score_mean" in {m.key for m in model.metrics}
    guesses = {(t.data.params["penalty"], t.data.params["alpha"]) for t in trials}
    assert {("l1", "0.1"), ("l2", "0.1")} <= guesses


def test_parent_run_holds_the_result(finished):
    store, _ = finished
    (parent,) = runs_by_role(store)["study"]
    assert parent.info.status == "FINISHED"
    metrics, params, tags = parent.data.metrics, parent.data.params, parent.data.tags
    for name in ("best_cv_score", "test_r2", "test_rmse", "test_mae"):
        assert name in metrics
    for baseline in ("lasso_guess", "ridge_guess", "unpenalized"):
        for m in ("r2", "rmse", "mae"):
            assert f"baseline_{baseline}_test_{m}" in metrics
    assert params["best_penalty"] in {"l1", "l2", "elasticnet"}
    assert float(params["best_alpha"]) > 0
    assert params["search.n_trials"] == "8"
    assert tags["mlflow.source.git.commit"]
    assert "| holdout (95% interval) | R2 | RMSE | MAE |" in tags["mlflow.note.content"]
    for name in ("test_rmse", "baseline_unpenalized_test_rmse"):  # bootstrap intervals
        assert metrics[f"{name}_low"] <= metrics[name] <= metrics[f"{name}_high"]
    assert params["selected"] == "best"
    assert metrics["pick_best_trial"] == metrics["best_trial_number"]
    assert metrics["pick_one_se_n_nonzero"] <= metrics["pick_best_n_nonzero"]
    inputs = {
        {t.key: t.value for t in d.tags}["mlflow.data.context"]: d.dataset
        for d in parent.inputs.dataset_inputs
    }
    assert set(inputs) == {"training", "evaluation"}  # the holdout is not training data
    assert {d.name for d in inputs.values()} == {"seed_regression"}
    assert inputs["training"].digest != inputs["evaluation"].digest
    c = client(store)
    files = {a.path for a in c.list_artifacts(parent.info.run_id)}
    assert {"summary.json", "config.yaml", "coefficients.png", "coefficients.csv"} <= files
    assert {"stability.csv", "stability.png"} <= files
    review = {
        "regularization_path.png",
        "validation_curve.png",
        "sparsity.png",
        "optimization_history.png",
        "param_importances.png",
        "slice_alpha.png",
        "predicted_vs_actual.png",
        "residuals.png",
    }
    assert review <= files
    # The best CV score is the best over the trials, so never worse than the guesses.
    trial_scores = [t.data.metrics["cv_score_mean"] for t in runs_by_role(store)["trial"]]
    assert metrics["best_cv_score"] == pytest.approx(max(trial_scores))


def test_summary_json_and_the_best_model_predicts_the_holdout(finished):
    from sklearn.metrics import r2_score

    from pipeline.config import SeedRegressionData
    from pipeline.data import load
    from pipeline.split import holdout
    from pipeline.tracking import mlflow  # imported there with MLflow's import warning silenced

    store, _ = finished
    (parent,) = runs_by_role(store)["study"]
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    path = client(store).download_artifacts(parent.info.run_id, "summary.json", str(store))
    summary = json.loads(Path(path).read_text())
    assert summary["parent_run_id"] == parent.info.run_id
    assert summary["best"]["penalty"] == parent.data.params["best_penalty"]
    assert summary["holdout"]["best"]["r2"] == pytest.approx(parent.data.metrics["test_r2"])
    model = mlflow.pyfunc.load_model(summary["best_model_uri"])
    parts = holdout(load(SeedRegressionData()), test_size=0.2, random_state=42, shuffle=True)
    predictions = model.predict(parts.X_test)
    assert r2_score(parts.y_test, predictions) == pytest.approx(parent.data.metrics["test_r2"])


def test_a_finished_study_is_reported_not_rerun(finished):
    store, _ = finished
    before = runs_by_role(store)
    again = run(store, "search.n_trials=8")
    assert again.returncode == 0, again.stderr
    assert "already finished" in again.stdout
    assert "v1: promoted" in again.stdout  # the decision as it was made: history
    assert "report:" not in again.stderr and "registry: registering" not in again.stderr
    after = runs_by_role(store)
    assert len(after["trial"]) == len(before["trial"]) and len(after["study"]) == 1
    (parent,) = after["study"]
    assert parent.data.tags["promotion"] == "promoted"
    locks = sorted(p.name for p in store.glob("*.lock"))  # three, named for what they guard
    assert locks == ["optuna.db.ask.lock", "optuna.db.create.lock", "optuna.db.study.lock"]


@pytest.mark.parametrize(
    ("overrides", "culprit"),
    [
        (["search.n_trial=5"], "search.n_trial"),
        (["search.n_trials=abc"], "search.n_trials"),
        (["+search.foo=1"], "unknown key 'search.foo'"),
        (["data=wines"], "choose one of: breast_cancer, csv, diabetes"),
        (["search.alpha_low=-1"], "'search.alpha_low' parameter must be > 0. Got -1.0"),
        (["search.alpha_low=10", "search.alpha_high=1"], "'search.alpha_high'"),
        (["search.n_splits=1"], "'search.n_splits' parameter must be >= 2"),
        (["split.test_size=1.5"], "'split.test_size'"),
        (["data=csv", "data.path=/no/such.csv", "data.target=y"], "/no/such.csv"),
        (["data=csv", "data.target=y"], "data.path"),
        (["data=csv", "data.path={csv}", "data.target=cost"], "column 'cost' not found"),
        (["data=csv", "data.path={csv}", "data.target=y", "data.features=[a,zz]"], "'zz'"),
        (["registry.metric=roc_auc"], "'registry.metric' parameter must be one of r2, rmse"),
        (["search.scoring=roc_auc"], "'search.scoring' parameter 'roc_auc' cannot score"),
        (["store_dir=/proc/regtune-test"], "store_dir: cannot create /proc/regtune-test"),
    ],
)
def test_user_errors_exit_2_with_one_line_and_touch_no_store(tmp_path, overrides, culprit):
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{2 * i}\n" for i in range(20)))
    store = tmp_path / "store"
    result = run(store, *[o.format(csv=csv) for o in overrides])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert culprit in lines[0]
    assert "Traceback" not in result.stderr
    assert not (store / "mlflow.db").exists() and not (store / "optuna.db").exists()


@pytest.mark.parametrize("empty", ["optuna.db", "mlflow.db"])
def test_an_empty_database_file_is_refused_not_taken_for_a_new_store(tmp_path, empty):
    """A store truncated to 0 bytes (a bad copy, a full disk) is not an empty store: a new
    study beside the old runs would register a second model for the same data."""
    store = tmp_path / "store"
    store.mkdir()
    (store / empty).touch()
    result = run(store, "search.n_trials=3")
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    key = "search.storage" if empty == "optuna.db" else "tracking.uri"
    assert last.startswith(f"error: {key}: cannot use ") and "empty (0 bytes)" in last, last
    assert "Traceback" not in result.stderr
    assert (store / empty).stat().st_size == 0  # left as it was found
    if (store / "mlflow.db").stat().st_size:
        assert not any(runs_by_role(store).values())  # no run created
    assert not Path("/proc/regtune-test/mlflow.db").exists()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_study_resumes_without_replaying(tmp_path, sig, code):
    store = tmp_path / "store"
    overrides = ("search.n_trials=30", "data=diabetes")
    # Trials take milliseconds: a pause per trial keeps the study running to be interrupted.
    proc = cli(store, *overrides, extra_env={"PIPELINE_TEST_PAUSE_IN_TRIAL": "0.1"})
    deadline = time.monotonic() + 120
    while complete_trials(store) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the study ended before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "resume the study" in err
    runs = runs_by_role(store)
    (parent,) = runs["study"]
    assert parent.info.status == "KILLED"
    assert all(r.info.status in ("FINISHED", "FAILED", "KILLED") for r in runs["trial"])
    done = complete_trials(store)
    assert 4 <= done < 30

    again = run(store, *overrides)
    assert again.returncode == 0, again.stderr
    runs = runs_by_role(store)
    assert [r.info.run_id for r in runs["study"]] == [parent.info.run_id]
    assert runs["study"][0].info.status == "FINISHED"
    finished = [r for r in runs["trial"] if r.info.status == "FINISHED"]
    numbers = sorted(int(r.data.tags["pipeline.trial_number"]) for r in finished)
    assert len(numbers) == len(set(numbers)) == 30
    assert complete_trials(store) == 30


def _table_csv(path: Path, n: int = 80, *, missing: bool = False) -> Path:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 10, n),
            "age": rng.integers(18, 80, n).astype(float),
            "region": rng.choice(["north", "south", "east"], n),
            "member": rng.choice([True, False], n),
        }
    )
    score = (frame["income"] - 50) / 10 + (frame["region"] == "north") + rng.normal(0, 0.5, n)
    frame["label"] = np.where(score > 0.3, "yes", "no")
    if missing:
        frame.loc[[1, 7], "income"] = np.nan
        frame.loc[[3], "region"] = np.nan
        frame.loc[[5], "label"] = np.nan
    frame.to_csv(path, index=False)
    return path


def test_binary_classification_from_a_csv_with_categories_and_missing_values(tmp_path):
    from sklearn.metrics import accuracy_score

    from pipeline.tracking import mlflow

    csv = _table_csv(tmp_path / "customers.csv", missing=True)
    store = tmp_path / "store"
    result = run(
        store,
        "data=csv",
        f"data.path={csv}",
        "data.target=label",
        "data.missing=impute",
        "search.n_trials=6",
    )
    assert result.returncode == 0, result.stderr
    assert "(neg_log_loss, 5-fold)" in result.stdout and "majority" in result.stdout
    (parent,) = runs_by_role(store)["study"]
    m = parent.data.metrics
    for name in ("accuracy", "f1", "roc_auc", "log_loss"):
        assert f"test_{name}" in m
        assert f"baseline_default_logistic_test_{name}" in m
        assert f"baseline_majority_test_{name}" in m
    assert m["n_rows_dropped_missing_target"] == 1
    assert parent.data.params["search.scoring"] == "neg_log_loss"  # a proper scoring rule
    assert m["test_roc_auc"] > m["baseline_majority_test_roc_auc"]  # and both reported
    assert m["test_log_loss"] < m["baseline_majority_test_log_loss"]
    files = {a.path for a in client(store).list_artifacts(parent.info.run_id)}
    assert {"confusion_matrix.png", "roc_curve.png", "coefficients.png"} <= files
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"runs:/{parent.info.run_id}/best_model")
    import pandas as pd

    frame = pd.read_csv(csv).dropna(subset=["label"])
    unseen = frame.drop(columns="label").assign(region="west")  # unknown category: ignored
    predictions = model.predict(unseen)
    assert set(predictions) <= {"yes", "no"}
    assert accuracy_score(frame["label"], model.predict(frame.drop(columns="label"))) > 0.6


def test_multiclass_classification_logs_a_coefficient_column_per_class(tmp_path):
    store = tmp_path / "store"
    result = run(store, "data=wine", "search.n_trials=4")
    assert result.returncode == 0, result.stderr
    (parent,) = runs_by_role(store)["study"]
    assert parent.data.params["search.scoring"] == "neg_log_loss"
    path = client(store).download_artifacts(parent.info.run_id, "coefficients.csv", str(tmp_path))
    header = Path(path).read_text().splitlines()[0]
    assert header.split(",")[1:] == ["class_0", "class_1", "class_2"]


def _csv_rows(header: str, rows: list[str]) -> str:
    return header + "\n" + "\n".join(rows) + "\n"


_N = 60
BAD_TABLES = {
    "empty": ("", [], "cannot read"),
    "malformed": (_csv_rows("a,b,y", ["1,2,3", "4,5,6,7,8"]), [], "cannot read"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", [], "cannot read"),
    "header only": (_csv_rows("a,b,y", []), [], "has no rows"),
    "target missing": (
        _csv_rows("a,b,z", [f"{i},{i % 3},{i}" for i in range(_N)]),
        [],
        "column 'y' not found",
    ),
    "all-missing column": (
        _csv_rows("a,b,y", [f"{i},,{i * 1.5}" for i in range(_N)]),
        [],
        "'b'",
    ),
    "infinite": (
        _csv_rows("a,b,y", [f"{i},{'inf' if i == 3 else i},{i * 1.5}" for i in range(_N)]),
        [],
        "'b' in",
    ),
    "declared numeric": (
        _csv_rows("a,b,y", [f"{i},{'abc' if i == 4 else i},{i * 1.5}" for i in range(_N)]),
        ["data.numeric=[b]"],
        "holds 'abc'",
    ),
    "single class": (
        _csv_rows("a,b,y", [f"{i},{i % 7},yes" for i in range(_N)]),
        [],
        "single class 'yes'",
    ),
    "rare class": (
        _csv_rows("a,b,y", [f"{i},{i % 7},{'no' if i < 3 else 'yes'}" for i in range(_N)]),
        [],
        "class 'no'",
    ),
    "too few rows": (_csv_rows("a,b,y", ["1,2,1.5", "2,3,2.5", "3,1,0.5"]), [], "fewer than"),
    "duplicate columns": (
        _csv_rows("a,a,y", [f"{i},{i},{i * 1.5}" for i in range(_N)]),
        [],
        "'a' appears more",
    ),
    "leakage": (
        _csv_rows("a,b,y", [f"{i},{i * 1.5},{i * 1.5}" for i in range(_N)]),
        [],
        "copy of the",
    ),
    "id column": (_csv_rows("a,user,y", [f"{i},u{i},{i * 1.5}" for i in range(_N)]), [], "'user'"),
    "too many categories": (
        _csv_rows("a,city,y", [f"{i},c{i % 55},{i * 1.5}" for i in range(_N * 2)]),
        [],
        "55 categories",
    ),
}


@pytest.mark.parametrize("case", list(BAD_TABLES))
def test_bad_tables_exit_2_naming_the_culprit_and_touch_no_store(tmp_path, case):
    content, extra, culprit = BAD_TABLES[case]
    csv = tmp_path / "input.csv"
    csv.write_bytes(content if isinstance(content, bytes) else content.encode())
    store = tmp_path / "store"
    result = run(store, "data=csv", f"data.path={csv}", "data.target=y", *extra)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and culprit in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not store.exists() or not any(store.glob("*.db"))


def test_hydra_files_never_hold_a_store_password(tmp_path):
    store = tmp_path / "store"
    url = "postgresql://u:s3cr%40t@127.0.0.1:9/x"  # refused at once: nothing listens on 9
    result = run(store, f"search.storage={url}", "search.n_trials=2")
    assert result.returncode == 2, result.stderr
    saved = list((store / "outputs").rglob(".hydra/*.yaml"))
    assert len(saved) == 3
    assert not [p for p in saved if "s3cr" in p.read_text()]
    assert all("u:***@127.0.0.1:9/x" in p.read_text() for p in saved)
    assert "s3cr" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["tracking.uri=http://127.0.0.1:9"], "tracking.uri"),
        (["tracking.uri=postgresql://u:pw@127.0.0.1:9/x"], "tracking.uri"),
        (["search.storage=postgresql://u:pw@127.0.0.1:9/x"], "search.storage"),
        (["job=rollback", "tracking.uri=http://127.0.0.1:9"], "tracking.uri"),
    ],
)
def test_a_store_that_does_not_answer_is_one_line_at_start(tmp_path, args, key):
    """MLflow retried a server that was down for minutes; the job gives up at start."""
    store = tmp_path / "store"
    proc = cli(store, *args, "search.n_trials=2")
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: {key}: cannot use "), err
    assert "Traceback" not in err and ":pw@" not in err
    assert not (store / "optuna.db").exists()


@pytest.mark.parametrize(
    ("arg", "culprit"),
    [
        (
            "tracking.uri=sqlite:////proc/regtune/x/mlflow.db",
            "tracking.uri: cannot create /proc/regtune/x",
        ),
        (
            "tracking.artifact_location=/proc/regtune/art",
            "tracking.artifact_location: cannot create /proc/regtune/art",
        ),
        (
            "search.storage=sqlite:////proc/regtune/optuna.db",
            "search.storage: cannot create /proc/regtune",
        ),
    ],
)
def test_a_store_that_cannot_be_written_is_one_line_at_start(tmp_path, arg, culprit):
    """/proc is a real directory tree where nobody, root included, creates anything."""
    store = tmp_path / "store"
    result = run(store, arg, "search.n_trials=2")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {culprit}"), result.stderr
    assert "Traceback" not in result.stderr
    assert not (store / "optuna.db").exists() and not (store / "mlflow.db").exists()


@pytest.fixture
def small_filesystem(tmp_path):
    """A 400 kB tmpfs mounted for the test (root only; elsewhere there is none to fill)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(folder)]
    if shutil.which("mount") is None or subprocess.run(mount, capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_disk_that_fills_mid_run_ends_in_one_line_and_failed_runs(tmp_path, small_filesystem):
    store = tmp_path / "store"
    result = run(store, f"tracking.artifact_location={small_filesystem}", "search.n_trials=20")
    assert result.returncode == 74, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: writing the stores failed: ") and "No space left" in last
    assert "Traceback" not in result.stderr
    runs = runs_by_role(store)
    assert [r.info.status for r in runs["study"]] == ["FAILED"]
    assert "RUNNING" not in {r.info.status for r in runs["trial"]}
    assert not client(store).search_registered_models()  # nothing registered
