from __future__ import annotations

import sqlite3
import threading
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report import SUMMARY

from pipeline.config import Penalty
from pipeline.data import Dataset
from pipeline.models import Candidate
from pipeline.search import CVSetup, TrialResult, evaluate
from pipeline.tracking import ROLE, TRIAL_NUMBER, Tracker, TrialLoggingError, mlflow

SYSTEM_TAGS = (
    "mlflow.user",
    "mlflow.source.name",
    "mlflow.source.type",
    "mlflow.source.git.commit",
    "mlflow.parentRunId",
)


@pytest.fixture(scope="module")
def tracker(tmp_path_factory) -> Tracker:
    root = tmp_path_factory.mktemp("store")
    return Tracker(
        uri=f"sqlite:///{root / 'mlflow.db'}",
        artifact_location=(root / "artifacts").as_uri(),
        experiment_name="t",
    )


@pytest.fixture(scope="module")
def setup(make_setup) -> CVSetup:
    return make_setup(n_splits=3, max_iter=1000, n_samples=40, n_features=5, n_informative=2)


def _log(tracker: Tracker, setup: CVSetup, results, *, log_models: bool = True) -> str:
    """A new parent run with ``results`` logged as its trials; its run id."""
    parent = tracker.open_parent(None, run_name="p", tags={}, params={})
    logger = tracker.trial_logger(
        parent, example_X=setup.X.head(3), example_y=setup.y.head(3), log_models=log_models
    )
    with logger:
        for result in results:
            logger.submit(result)
    assert logger.count == len(results) and logger.pending() == 0
    return parent


def _by_number(tracker: Tracker, parent: str) -> dict[int, mlflow.entities.Run]:
    return {int(r.data.tags[TRIAL_NUMBER]): r for r in tracker.trial_runs(parent)}


def test_experiment_is_created_once_with_its_artifact_location(tracker):
    again = Tracker(uri=tracker.uri, artifact_location="file:///elsewhere", experiment_name="t")
    assert again.experiment_id == tracker.experiment_id
    exp = tracker.client.get_experiment(tracker.experiment_id)
    assert exp.artifact_location.endswith("/artifacts")


def test_the_sqlite_store_is_in_write_ahead_log_mode(tracker):
    path = tracker.uri.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_parent_run_is_created_then_reopened(tracker):
    run_id = tracker.open_parent(None, run_name="s", tags={"k": "v"}, params={"search.n_trials": 5})
    run = tracker.client.get_run(run_id)
    assert run.data.tags[ROLE] == "study" and run.data.tags["k"] == "v"
    assert run.data.params == {"search.n_trials": "5"}
    assert run.data.tags["mlflow.user"] and run.data.tags["mlflow.source.type"] == "LOCAL"
    assert mlflow.active_run() is None  # not the caller's active run
    tracker.close_parent(run_id, "KILLED")
    assert tracker.open_parent(run_id, run_name="s", tags={}, params={}) == run_id
    assert tracker.client.get_run(run_id).info.status == "RUNNING"
    assert tracker.open_parent("no-such-run", run_name="s2", tags={}, params={}) != run_id


def test_a_child_run_has_the_system_tags_of_a_fluent_nested_run(tracker, setup):
    parent = _log(tracker, setup, [evaluate(setup, Candidate(Penalty.l1, 0.5), number=0)])
    child = _by_number(tracker, parent)[0]

    def nested() -> str:  # as a user's script would, in a thread of its own
        with mlflow.start_run(run_id=parent), mlflow.start_run(nested=True) as run:
            return run.info.run_id

    box: list[str] = []
    thread = threading.Thread(target=lambda: box.append(nested()))
    thread.start()
    thread.join()
    theirs = tracker.client.get_run(box[0])
    assert theirs.info.experiment_id == child.info.experiment_id == tracker.experiment_id
    ours = {k: v for k, v in child.data.tags.items() if k.startswith("mlflow.")}
    system = {k: v for k, v in theirs.data.tags.items() if k.startswith("mlflow.")}
    assert set(ours) == set(system)
    for key in SYSTEM_TAGS:
        assert ours.get(key) == system.get(key), key
    assert ours["mlflow.parentRunId"] == parent
    assert child.info.user_id == theirs.info.user_id


def test_trials_become_child_runs_with_logged_models(tracker, setup):
    results = [
        evaluate(setup, Candidate(Penalty.l1, 0.5), number=0),
        evaluate(setup, Candidate(Penalty.elasticnet, 0.2, 0.4), number=1),
    ]
    runs = _by_number(tracker, _log(tracker, setup, results))
    l1, en = runs[0], runs[1]
    assert l1.info.run_name == "trial 0 · l1 α=0.5" and l1.info.status == "FINISHED"
    assert l1.data.tags["penalty"] == "l1" and l1.data.tags[ROLE] == "trial"
    assert l1.data.params == {"penalty": "l1", "alpha": "0.5"}
    assert en.data.params["l1_ratio"] == "0.4"
    expected = {"cv_score_mean", "cv_score_std", "train_score_mean", "n_nonzero_coefs"}
    expected |= {"fit_time_s", "converged", "cv_score_fold0", "cv_score_fold2"}
    assert expected <= set(l1.data.metrics)
    assert l1.data.metrics["cv_score_mean"] == pytest.approx(results[0].cv_score_mean)
    files = {f.path for f in tracker.client.list_artifacts(l1.info.run_id)}
    assert {"coefficients.svg", "coefficients.csv"} <= files
    svg = tracker.client.download_artifacts(l1.info.run_id, "coefficients.svg")
    assert "l1 α=0.5" in Path(svg).read_text()
    csv = tracker.client.download_artifacts(l1.info.run_id, "coefficients.csv")
    coefs = pd.read_csv(csv, index_col=0)["coefficient"]
    np.testing.assert_allclose(coefs, results[0].estimator[-1].coef_)
    model = tracker.load_model(f"runs:/{l1.info.run_id}/model")
    np.testing.assert_allclose(model.predict(setup.X), results[0].estimator.predict(setup.X))


def test_a_trial_model_is_a_logged_model_of_its_run_with_its_metrics(tracker, setup):
    result = evaluate(setup, Candidate(Penalty.l2, 2.0), number=0)
    child = _by_number(tracker, _log(tracker, setup, [result]))[0].info.run_id
    info = mlflow.models.get_model_info(f"runs:/{child}/model")
    assert info.run_id == child and info.model_id
    found = mlflow.search_logged_models(
        experiment_ids=[tracker.experiment_id],
        filter_string=f"source_run_id = '{child}'",
        output_format="list",
    )
    assert [m.model_id for m in found] == [info.model_id]
    model = found[0]
    assert model.name == "model" and model.params == {"penalty": "l2", "alpha": "2.0"}
    metrics = {m.key: m.value for m in model.metrics}
    assert metrics["cv_score_mean"] == pytest.approx(result.cv_score_mean)
    assert {m.run_id for m in model.metrics} == {child}
    by_uri = mlflow.models.get_model_info(f"models:/{info.model_id}")
    assert by_uri.run_id == child


def test_failed_pruned_and_interrupted_trials(tracker, setup):
    pruned = evaluate(setup, Candidate(Penalty.l1, 0.1), number=1)
    pruned.cv_scores, pruned.pruned, pruned.estimator = pruned.cv_scores[:1], True, None
    results = [
        TrialResult(0, Candidate(Penalty.l2, 1.0), [], 0.0, False, error="ValueError: boom"),
        pruned,
        evaluate(setup, Candidate(Penalty.l1, 0.2), number=2),
    ]
    results[2].retry_of = 0
    parent = tracker.open_parent(None, run_name="p", tags={}, params={})
    logger = tracker.trial_logger(
        parent, example_X=setup.X.head(3), example_y=setup.y.head(3), log_models=False
    )
    interrupted = TrialResult(3, Candidate(Penalty.l1, 0.3), [], 0.0, False, error="interrupted")
    with pytest.raises(KeyboardInterrupt), logger:
        for result in results:
            logger.submit(result)
        logger.submit(interrupted)  # as the search hands over a trial stopped by Ctrl-C
        raise KeyboardInterrupt
    runs = _by_number(tracker, parent)
    assert set(runs) == {0, 1, 2, 3}
    failed, cut, retried, stopped = runs[0], runs[1], runs[2], runs[3]
    assert failed.info.status == "FAILED" and failed.data.tags["fail_reason"] == "ValueError: boom"
    assert failed.data.params == {"penalty": "l2", "alpha": "1.0"} and not failed.data.metrics
    assert cut.info.status == "FINISHED" and cut.data.tags["pruned"] == "true"
    assert cut.data.tags["pruned_after_folds"] == "1"
    assert set(cut.data.metrics) == {"cv_score_fold0"}
    assert retried.data.tags["pipeline.retry_of"] == "0"
    assert "model" not in {f.path for f in tracker.client.list_artifacts(retried.info.run_id)}
    assert stopped.info.status == "FAILED" and stopped.data.tags["fail_reason"] == "interrupted"


def test_leaving_on_an_exception_waits_a_bounded_time(tracker, setup, monkeypatch):
    from pipeline import trial_log

    monkeypatch.setenv(trial_log.PAUSE_IN_LOGGING, "3")  # each trial takes 3 s to log
    parent = tracker.open_parent(None, run_name="p", tags={}, params={})
    logger = tracker.trial_logger(
        parent, example_X=setup.X.head(3), example_y=setup.y.head(3), log_models=False
    )
    logger.drain_s = 0.5
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), logger:
        for n in range(3):
            logger.submit(evaluate(setup, Candidate(Penalty.l2, 0.5), number=n))
        raise KeyboardInterrupt
    assert time.monotonic() - start < 20  # not 3 x 3 s plus the worker's start-up
    assert logger.count == 0  # none waited for: left for the next run to log


def test_settle_kills_runs_left_running_and_lists_logged_trials(tracker, setup):
    parent = _log(
        tracker, setup, [evaluate(setup, Candidate(Penalty.l2, 0.5), number=0)], log_models=False
    )
    stale = tracker.client.create_run(
        tracker.experiment_id,
        tags={"mlflow.parentRunId": parent, ROLE: "trial", TRIAL_NUMBER: "1"},
    )
    assert tracker.settle_trial_runs(parent, older_than_s=3600) == {0}
    assert tracker.client.get_run(stale.info.run_id).info.status == "RUNNING"  # may be live
    assert tracker.settle_trial_runs(parent) == {0}
    assert tracker.client.get_run(stale.info.run_id).info.status == "KILLED"


def test_a_logging_error_reaches_the_caller(tracker, setup):
    parent = tracker.open_parent(None, run_name="p3", tags={}, params={})
    logger = tracker.trial_logger(
        parent, example_X=setup.X.head(3), example_y=setup.y.head(3), log_models=False
    )
    broken = evaluate(setup, Candidate(Penalty.l1, 0.5), number=0)
    broken.estimator = None  # no coefficients to log
    with pytest.raises(TrialLoggingError, match="TypeError"), logger:
        logger.submit(broken)
    (run,) = tracker.trial_runs(parent)
    assert run.info.status == "FAILED"  # ended, not left RUNNING
    with pytest.raises(TrialLoggingError, match="TypeError"):
        logger.submit(evaluate(setup, Candidate(Penalty.l1, 0.5), number=1))


def test_the_outcome_logs_training_and_holdout_rows_as_separate_inputs(tracker, setup, table):
    X, y = table.drop(columns="price"), table["price"]
    dataset = Dataset(X, y, name="houses", source="/data/houses.csv")
    train, holdout = (X.iloc[:45], y.iloc[:45]), (X.iloc[45:], y.iloc[45:])
    parent = tracker.open_parent(None, run_name="outcome", tags={}, params={})
    best = evaluate(setup, Candidate(Penalty.l1, 0.5), number=0).estimator
    uri = tracker.log_evidence(
        parent,
        params={"best_alpha": 0.5},
        best_model=best,
        example=setup.X.head(3),
        tables={"coefficients.csv": pd.Series([1.0], index=["x"], name="coefficient")},
        figures={},
        config_yaml="a: 1\n",
        dataset=dataset,
        train=train,
        holdout=holdout,
    )
    summary = replace(SUMMARY, parent_run_id=parent, best_model_uri=uri)
    tracker.log_result(parent, metrics={"best_cv_score": -1.0}, summary=summary, description="")
    run = tracker.client.get_run(parent)
    inputs = {
        next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset
        for i in run.inputs.dataset_inputs
    }
    assert set(inputs) == {"training", "evaluation"}
    rows = {k: json_rows(d.profile) for k, d in inputs.items()}
    assert rows == {"training": 45, "evaluation": 15}
    assert {d.name for d in inputs.values()} == {"houses"}
    assert inputs["training"].digest != inputs["evaluation"].digest
    info = mlflow.models.get_model_info(uri)
    assert info.run_id == parent and info.name == "best_model"
    assert tracker.load_summary(parent) == summary


def json_rows(profile: str) -> int:
    import json

    return json.loads(profile)["num_rows"]


def test_the_logged_input_schema_is_mlflows_own_for_all_rows(tracker, setup):
    """Missing values far down a column still make it optional, as MLflow infers it from
    every row."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(3000, 3)), columns=["a", "b", "c"])
    X["kind"] = pd.Series(["x", "y", "z"] * 1000, dtype="str")
    X["count"] = np.arange(3000)
    X.loc[2500, "a"] = np.nan
    X.loc[2999, "kind"] = None
    X["late"] = pd.Series([None] * 2000 + ["a", "b"] * 500, dtype="str")  # missing at first
    y = pd.Series(rng.normal(size=3000), name="target")
    dataset = Dataset(X, y, name="late_gaps", source="/data/late_gaps.csv")
    parent = tracker.open_parent(None, run_name="schema", tags={}, params={})
    tracker.log_evidence(
        parent,
        params={},
        best_model=evaluate(setup, Candidate(Penalty.l2, 0.5), number=0).estimator,
        example=setup.X.head(3),
        tables={"coefficients.csv": pd.Series([1.0], index=["x"], name="coefficient")},
        figures={},
        config_yaml="a: 1\n",
        dataset=dataset,
        train=(X, y),
        holdout=(X.head(10), y.head(10)),
    )
    (logged,) = [
        i.dataset
        for i in tracker.client.get_run(parent).inputs.dataset_inputs
        if any(t.value == "training" for t in i.tags)
    ]
    expected = mlflow.data.from_pandas(pd.concat([X, y], axis=1), targets="target", digest="-")
    with warnings.catch_warnings():  # (as errors here, MLflow would drop the schema for it)
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column")
        schema = expected.to_dict()["schema"]
    assert schema is not None and '"name": "count"' in schema
    assert logged.schema == schema
    assert json_rows(logged.profile) == 3000


def test_a_parent_another_process_finished_is_not_closed_killed_or_failed(tracker):
    """A job interrupted while it waited for another to report the study leaves the
    reported parent FINISHED; one still running is closed as asked."""
    finished = tracker.open_parent(None, run_name="done", tags={}, params={})
    tracker.close_parent(finished, "FINISHED")
    for status in ("KILLED", "FAILED"):
        tracker.close_parent(finished, status)
        assert tracker.client.get_run(finished).info.status == "FINISHED"
    running = tracker.open_parent(None, run_name="running", tags={}, params={})
    tracker.close_parent(running, "KILLED")
    assert tracker.client.get_run(running).info.status == "KILLED"
