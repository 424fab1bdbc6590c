from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Penalty
from pipeline.models import Candidate
from pipeline.search import CVSetup, TrialResult, evaluate
from pipeline.tracking import ROLE, TRIAL_NUMBER, Tracker, TrialLoggingError


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


def test_experiment_is_created_once_with_its_artifact_location(tracker):
    again = Tracker(uri=tracker.uri, artifact_location="file:///elsewhere", experiment_name="t")
    assert again.experiment_id == tracker.experiment_id
    exp = tracker.client.get_experiment(tracker.experiment_id)
    assert exp.artifact_location.endswith("/artifacts")


def test_parent_run_is_created_then_reopened(tracker):
    run_id = tracker.open_parent(None, run_name="s", tags={"k": "v"}, params={"search.n_trials": 5})
    run = tracker.client.get_run(run_id)
    assert run.data.tags[ROLE] == "study" and run.data.tags["k"] == "v"
    assert run.data.params == {"search.n_trials": "5"}
    tracker.close_parent(run_id, "KILLED")
    assert tracker.open_parent(run_id, run_name="s", tags={}, params={}) == run_id
    assert tracker.client.get_run(run_id).info.status == "RUNNING"
    assert tracker.open_parent("no-such-run", run_name="s2", tags={}, params={}) != run_id


def test_trials_become_child_runs(tracker, setup):
    parent = tracker.open_parent(None, run_name="p", tags={}, params={})
    results = [
        evaluate(setup, Candidate(Penalty.l1, 0.5), number=0),
        evaluate(setup, Candidate(Penalty.elasticnet, 0.2, 0.4), number=1),
        TrialResult(2, Candidate(Penalty.l2, 1.0), [], 0.0, False, error="ValueError: boom"),
    ]
    logger = tracker.trial_logger(
        parent, example_X=setup.X.head(3), example_y=setup.y.head(3), log_models=True
    )
    with logger:
        for r in results:
            logger.submit(r)
    assert logger.count == 3
    runs = {int(r.data.tags[TRIAL_NUMBER]): r for r in tracker.trial_runs(parent)}
    assert set(runs) == {0, 1, 2}
    l1, en, failed = runs[0], runs[1], runs[2]
    assert l1.info.run_name == "l1 α=0.5" and l1.info.status == "FINISHED"
    assert l1.data.tags["penalty"] == "l1" and l1.data.tags[ROLE] == "trial"
    assert l1.data.params == {"penalty": "l1", "alpha": "0.5"}
    assert en.data.params["l1_ratio"] == "0.4"
    expected = {"cv_score_mean", "cv_score_std", "n_nonzero_coefs", "fit_time_s", "converged"}
    assert expected | {"cv_score_fold0", "cv_score_fold2"} <= set(l1.data.metrics)
    assert l1.data.metrics["cv_score_mean"] == pytest.approx(results[0].cv_score_mean)
    files = {f.path for f in tracker.client.list_artifacts(l1.info.run_id)}
    assert {"coefficients.svg", "coefficients.csv", "model"} <= files
    svg = tracker.client.download_artifacts(l1.info.run_id, "coefficients.svg")
    assert "l1 α=0.5" in Path(svg).read_text()
    model = tracker.load_model(f"runs:/{l1.info.run_id}/model")
    np.testing.assert_allclose(model.predict(setup.X), results[0].estimator.predict(setup.X))
    assert failed.info.status == "FAILED" and failed.data.tags["fail_reason"] == "ValueError: boom"


def test_settle_kills_runs_left_running_and_lists_logged_trials(tracker, setup):
    parent = tracker.open_parent(None, run_name="p2", tags={}, params={})
    logger = tracker.trial_logger(
        parent, example_X=setup.X.head(3), example_y=setup.y.head(3), log_models=False
    )
    with logger:
        logger.submit(evaluate(setup, Candidate(Penalty.l2, 0.5), number=0))
    stale = tracker.client.create_run(
        tracker.experiment_id,
        tags={"mlflow.parentRunId": parent, ROLE: "trial", TRIAL_NUMBER: "1"},
    )
    assert tracker.settle_trial_runs(parent) == {0}
    assert tracker.client.get_run(stale.info.run_id).info.status == "KILLED"


def test_a_logging_error_reaches_the_caller(tracker, setup):
    parent = tracker.open_parent(None, run_name="p3", tags={}, params={})
    logger = tracker.trial_logger(
        parent, example_X=setup.X.head(3), example_y=pd.Series([1.0, 2.0, 3.0]), log_models=False
    )
    broken = evaluate(setup, Candidate(Penalty.l1, 0.5), number=0)
    broken.estimator = None  # no coefficients to log
    with pytest.raises(TrialLoggingError, match="TypeError"), logger:
        logger.submit(broken)


def test_a_dead_logging_process_is_an_error_not_a_hang(tracker, setup):
    parent = tracker.open_parent(None, run_name="p4", tags={}, params={})
    logger = tracker.trial_logger(
        parent, example_X=setup.X.head(3), example_y=setup.y.head(3), log_models=False
    )
    with pytest.raises(TrialLoggingError, match=r"not logged|died"), logger:
        logger.process.kill()  # as the OOM killer would
        logger.submit(evaluate(setup, Candidate(Penalty.l2, 0.5), number=0))


def test_trial_model_folders_are_what_save_model_writes(tmp_path, setup):
    import mlflow

    from pipeline.tracking import ModelFolders, _signature

    signature = _signature(setup.X.head(3), setup.y.head(3).to_numpy())
    requirements = mlflow.sklearn.get_default_pip_requirements()
    folders = ModelFolders(signature, requirements)
    first = evaluate(setup, Candidate(Penalty.l1, 0.5), number=0).estimator
    second = evaluate(setup, Candidate(Penalty.l2, 3.0), number=1).estimator
    folders.save(first, tmp_path / "first")
    folders.save(second, tmp_path / "second")  # from the template
    folders.save(second, tmp_path / "third")
    mlflow.sklearn.save_model(
        second,
        tmp_path / "plain",
        pip_requirements=requirements,
        signature=signature,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
    )
    got, want = tmp_path / "second", tmp_path / "plain"
    assert sorted(p.name for p in got.iterdir()) == sorted(p.name for p in want.iterdir())
    for name in ("conda.yaml", "python_env.yaml", "requirements.txt", "model.pkl"):
        assert (got / name).read_bytes() == (want / name).read_bytes(), name
    mine, theirs, later = (
        mlflow.models.Model.load(str(p / "MLmodel")) for p in (got, want, tmp_path / "third")
    )
    assert len({mine.model_uuid, theirs.model_uuid, later.model_uuid}) == 3
    assert mine.model_size_bytes == theirs.model_size_bytes
    assert mine.utc_time_created[:10] == theirs.utc_time_created[:10]
    for key in ("utc_time_created", "model_uuid"):
        setattr(mine, key, getattr(theirs, key))
    assert mine.to_dict() == theirs.to_dict()
    loaded = mlflow.sklearn.load_model(str(got))
    np.testing.assert_allclose(loaded.predict(setup.X), second.predict(setup.X))


def test_a_run_written_whole_reads_back_as_one_written_by_the_client(tracker):
    from pipeline.tracking import RunWriter

    whole = RunWriter(tracker.client, tracker.experiment_id)
    assert whole._sql is not None  # a SQL store: one transaction per run
    by_client = RunWriter(tracker.client, tracker.experiment_id)
    by_client._sql = None  # as on a tracking server: create_run, log_batch, set_terminated
    metrics = {"score": -1.5, "count": 3, "missing": float("nan"), "huge": float("inf")}
    ids = [
        writer.write(
            "l1 α=0.5",
            tags={ROLE: "trial", TRIAL_NUMBER: "7", "penalty": "l1"},
            params={"penalty": "l1", "alpha": "0.5"},
            metrics=metrics,
            status=status,
            files=lambda folder: (folder / "notes.txt").write_text("coefficients"),
            start_ms=1_000,
            end_ms=2_500,
        )
        for writer in (whole, by_client)
        for status in ("FINISHED", "FAILED")
    ]
    runs = [tracker.client.get_run(i) for i in ids]
    for run, twin in zip(runs[:2], runs[2:], strict=True):
        for field in ("status", "lifecycle_stage", "user_id"):
            assert getattr(run.info, field) == getattr(twin.info, field), field
        # Written whole: the trial's own times. By the client: when it was logged (a run
        # RUNNING for longer than the grace period would be taken for a dead worker's).
        assert (run.info.start_time, run.info.end_time) == (1_000, 2_500)
        assert 2_500 < twin.info.start_time <= twin.info.end_time
        assert run.info.run_name == twin.info.run_name == "l1 α=0.5"
        assert run.info.experiment_id == twin.info.experiment_id == tracker.experiment_id
        assert run.info.artifact_uri.endswith(f"/{run.info.run_id}/artifacts")
        assert run.data.params == twin.data.params
        assert run.data.tags == twin.data.tags
        np.testing.assert_equal(run.data.metrics, twin.data.metrics)
        for key in metrics:
            history = [
                [(m.value, m.step, m.timestamp) for m in tracker.client.get_metric_history(r, key)]
                for r in (run.info.run_id, twin.info.run_id)
            ]
            np.testing.assert_equal(history[0], history[1])
        notes = [
            Path(tracker.client.download_artifacts(r, "notes.txt")).read_text()
            for r in (run.info.run_id, twin.info.run_id)
        ]
        assert notes == ["coefficients"] * 2
    found = tracker.client.search_runs(
        [tracker.experiment_id], "metrics.score < -1 and params.alpha = '0.5'"
    )
    assert set(ids) <= {r.info.run_id for r in found}


@pytest.mark.parametrize("fork", [True, False], ids=["process", "thread"])
def test_one_logging_process_serves_studies_in_turn_and_stops_when_closed(tracker, setup, fork):
    from pipeline.logger_process import LoggerProcess

    with LoggerProcess(fork=fork) as process:
        for name in (f"q1-{fork}", f"q2-{fork}"):
            parent = tracker.open_parent(None, run_name=name, tags={}, params={})
            with tracker.trial_logger(
                parent,
                example_X=setup.X.head(3),
                example_y=setup.y.head(3),
                log_models=False,
                process=process,
            ) as logger:
                logger.submit(evaluate(setup, Candidate(Penalty.l2, 0.5), number=0))
            assert logger.count == 1 and process.alive()
            assert [r.info.status for r in tracker.trial_runs(parent)] == ["FINISHED"]
    assert not process.alive()


def test_an_unused_logging_process_is_stopped_at_once():
    import time

    from pipeline.logger_process import LoggerProcess

    start = time.monotonic()
    process = LoggerProcess()
    process.close()
    assert not process.alive() and time.monotonic() - start < 5


def test_coefficients_csv_is_what_pandas_writes():
    from pipeline.tracking import coefficients_csv

    names = ["num__x", 'cat__c_"a,b"', "line\nbreak", "é"]
    series = pd.Series([0.5, -0.0, 1e-12, -3.25e20], index=names, name="coefficient")
    frame = pd.DataFrame(np.arange(12.0).reshape(4, 3) / 7, index=names, columns=["a", "b", "c"])
    assert coefficients_csv(series) == series.to_csv()
    assert coefficients_csv(frame) == frame.to_csv()


def test_a_message_cut_short_ends_the_logging_process(monkeypatch):
    from pipeline.logger_process import LoggerGone, LoggerProcess

    process = LoggerProcess()
    process.used = True

    def interrupted(item):
        raise KeyboardInterrupt  # a second Ctrl-C in the middle of a write to a full pipe

    monkeypatch.setattr(process._inbox, "send", interrupted)
    with pytest.raises(KeyboardInterrupt):
        process.send("half a message")
    assert process.broken and not process.alive()
    with pytest.raises(LoggerGone):
        process.send("the next one")
    process.close()
