"""Many workers on one study: PostgreSQL storage and tracking store, real processes.

The PostgreSQL server is started by the ``postgres`` fixture when none answers; each test
gets two empty databases (Optuna's and MLflow's).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from cli_helpers import cli

from pipeline import constraints, stores
from pipeline.config import Job
from pipeline.errors import UserError

# Small heartbeats, so that a killed worker's trial is failed within seconds.
WORKER = (
    "job=worker",
    "search=distributed",
    "tracking=server",
    "search.heartbeat_interval=1",
    "search.grace_period=3",
    "search.progress_bar=false",
    "tracking.log_trial_models=false",
)


# Trials of about a second, so that a kill lands inside one.
# Trials take milliseconds; the kill tests need them to take a second (see
# search.PAUSE_IN_TRIAL), and a pruned trial would end early.
SLOW = ("search.prune=false",)
SLOW_ENV = {"PIPELINE_TEST_PAUSE_IN_TRIAL": "1"}


def _env(postgres, stores: dict[str, str]) -> dict[str, str]:
    """Store URLs through the environment, as the config groups read them, password included."""
    return {
        "REGTUNE_STORAGE": postgres.url(stores["optuna"]),
        "MLFLOW_TRACKING_URI": postgres.url(stores["mlflow"]),
    }


def _running_trials(url: str) -> int | None:
    """How many trials of the one study in ``url`` are running (None: no study yet)."""
    import optuna

    try:
        storage = _storage(url)
        (summary,) = optuna.get_all_study_summaries(storage, include_best_trial=False)
    except (ValueError, Exception):  # no study, or no schema yet
        return None
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    return len(study.get_trials(states=(optuna.trial.TrialState.RUNNING,)))


def _storage(url: str):
    """Optuna's storage without a connection pool: no connection outlives a call."""
    import optuna
    from sqlalchemy.pool import NullPool

    return optuna.storages.RDBStorage(url, engine_kwargs={"poolclass": NullPool})


def _study(postgres, stores):
    import optuna

    storage = _storage(postgres.url(stores["optuna"]))
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    assert len(summaries) == 1, [s.study_name for s in summaries]
    return optuna.load_study(study_name=summaries[0].study_name, storage=storage)


def _runs(postgres, stores) -> tuple[object, list]:
    from mlflow import MlflowClient

    client = MlflowClient(postgres.url(stores["mlflow"]))
    names = sorted(e.name for e in client.search_experiments())
    assert names == ["Default", "regularization"]
    assert client.search_runs(["0"]) == []  # nothing landed in the Default experiment
    exp = client.get_experiment_by_name("regularization")
    return client, client.search_runs([exp.experiment_id], max_results=1000)


def _finish(procs) -> list[tuple[str, str]]:
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    return outs


def _no_password(postgres, stores, root: Path, outputs: list[tuple[str, str]]) -> None:
    secret = postgres.password
    for out, err in outputs:
        assert secret not in out and secret not in err
    for path in root.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    for db in stores.values():
        assert secret not in postgres.dump(db)


@pytest.fixture(autouse=True)
def _no_pooled_connections(monkeypatch):
    """MLflow's store in this process without a pool: no connection left open at the end."""
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")


@pytest.mark.e2e
def test_eight_workers_on_empty_stores_share_one_study_and_the_exact_budget(
    tmp_path, postgres, pg_stores
):
    env = _env(postgres, pg_stores)
    # Eight "machines" (each its own store_dir for logs and outputs) start at the same moment.
    procs = [
        cli(tmp_path / f"m{i}", *WORKER, "search.n_trials=12", extra_env=env) for i in range(8)
    ]
    outputs = _finish(procs)
    assert all("worker done" in out for out, _ in outputs)

    study = _study(postgres, pg_stores)
    states = Counter(t.state.name for t in study.trials)
    assert states["COMPLETE"] == 12
    assert set(states) <= {"COMPLETE", "FAIL"}  # nothing left running or waiting
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    parent = study.user_attrs["mlflow_parent_run_id"]

    client, runs = _runs(postgres, pg_stores)
    studies = [r for r in runs if r.data.tags["pipeline.role"] == "study"]
    trials = [r for r in runs if r.data.tags["pipeline.role"] == "trial"]
    assert [r.info.run_id for r in studies] == [parent]
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {parent}
    complete = {t.number for t in study.trials if t.state.name == "COMPLETE"}
    logged = [int(r.data.tags["pipeline.trial_number"]) for r in trials]
    assert sorted(logged) == sorted(complete)
    assert {r.info.status for r in trials} == {"FINISHED"}

    # make tune on the same stores reports the study and closes its parent run.
    tune = cli(tmp_path / "tune", *WORKER[1:], "search.n_trials=12", extra_env=env)
    outputs += _finish([tune])
    assert "12 complete" in outputs[-1][0]
    assert client.get_run(parent).info.status == "FINISHED"
    assert _study(postgres, pg_stores).user_attrs["finished"] is True
    _no_password(postgres, pg_stores, tmp_path, outputs)


def _wait_for(predicate, timeout: float = 240.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.e2e
def test_a_killed_worker_s_trial_is_failed_retried_and_the_budget_stays_exact(
    tmp_path, postgres, pg_stores
):

    env = {**_env(postgres, pg_stores), **SLOW_ENV}
    slow = (*SLOW, "search.n_trials=8")
    victim = cli(tmp_path / "a", *WORKER, *slow, extra_env=env)
    survivor = cli(tmp_path / "b", *WORKER, *slow, extra_env=env)
    url = postgres.url(pg_stores["optuna"])

    def both_in_a_trial() -> bool:
        assert victim.poll() is None and survivor.poll() is None
        return _running_trials(url) == 2  # one per worker

    _wait_for(both_in_a_trial, what="two running trials")
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    outputs = _finish([survivor])

    study = _study(postgres, pg_stores)
    states = Counter(t.state.name for t in study.trials)
    assert states["COMPLETE"] == 8
    assert set(states) <= {"COMPLETE", "FAIL"}
    # RetryHeartbeatStaleTrialCallback links a retry to the trial that died.
    retries = {
        t.number: t.system_attrs["failed_trial"]
        for t in study.trials
        if "failed_trial" in t.system_attrs
    }
    assert len(retries) >= 1
    for retry, original in retries.items():
        assert study.trials[original].state.name == "FAIL"
        assert study.trials[retry].state.name == "COMPLETE"
        # The kill can land between two suggestions: the retry repeats every
        # parameter the original had drawn, and may add the ones it had not.
        drawn = study.trials[original].params
        assert {k: study.trials[retry].params[k] for k in drawn} == drawn

    # Finishing the study settles every run: nothing is left RUNNING.
    tune = cli(tmp_path / "tune", *WORKER[1:], *slow, extra_env=env)
    outputs += _finish([tune])
    _, runs = _runs(postgres, pg_stores)
    assert "RUNNING" not in {r.info.status for r in runs}
    by_number = {}
    for r in runs:
        if r.data.tags["pipeline.role"] == "trial":
            by_number.setdefault(int(r.data.tags["pipeline.trial_number"]), []).append(r)
    for retry, original in retries.items():
        assert {r.info.status for r in by_number[original]} <= {"FAILED", "KILLED"}
        (run,) = by_number[retry]
        assert run.data.tags["pipeline.retry_of"] == str(original)
    complete = {t.number for t in study.trials if t.state.name == "COMPLETE"}
    finished = {n for n, rs in by_number.items() if any(r.info.status == "FINISHED" for r in rs)}
    assert finished == complete
    _no_password(postgres, pg_stores, tmp_path, outputs)


@pytest.mark.e2e
def test_with_no_survivor_make_tune_cleans_up_first(tmp_path, postgres, pg_stores):
    import optuna

    env = {**_env(postgres, pg_stores), **SLOW_ENV}
    slow = (*SLOW, "search.n_trials=4")
    victim = cli(tmp_path / "a", *WORKER, *slow, extra_env=env)
    url = postgres.url(pg_stores["optuna"])

    def in_a_trial() -> bool:
        assert victim.poll() is None
        return _running_trials(url) == 1

    _wait_for(in_a_trial, what="a running trial")
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)

    tune = cli(tmp_path / "tune", *WORKER[1:], *slow, extra_env=env)
    outputs = _finish([tune])
    assert "4 complete, 0 pruned, 1 failed" in outputs[0][0]
    study = _study(postgres, pg_stores)
    (dead,) = study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == dead.number]
    assert retry.state.name == "COMPLETE"
    _, runs = _runs(postgres, pg_stores)
    assert "RUNNING" not in {r.info.status for r in runs}


@pytest.mark.e2e
def test_a_wrong_password_is_one_masked_line(tmp_path, postgres, pg_stores):
    env = _env(postgres, pg_stores)
    env["REGTUNE_STORAGE"] = env["REGTUNE_STORAGE"].replace(postgres.password, "not-it-s3cret")
    proc = cli(tmp_path, *WORKER, extra_env=env)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error")]
    assert line.startswith(
        "error: search.storage: cannot use postgresql+psycopg://regtune_test:***@"
    )
    assert "password authentication failed" in line
    assert "not-it-s3cret" not in out + err


# -- configuration, no server needed -----------------------------------------------------------


def test_a_worker_refuses_file_stores_and_fresh(make_config, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(UserError, match=r"'search.storage' parameter must be a PostgreSQL URL"):
        constraints.validate(make_config("job=worker"))
    pg = "search.storage=postgresql://u@h/db"
    with pytest.raises(UserError, match=r"'tracking.uri' parameter must be an http"):
        constraints.validate(make_config("job=worker", pg))
    with pytest.raises(UserError, match=r"'search.fresh' parameter must be false"):
        constraints.validate(make_config("job=worker", pg, "tracking=server", "search.fresh=true"))


def test_store_urls_take_psycopg_and_a_server_keeps_its_artifacts(make_config, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("REGTUNE_STORAGE", "postgresql://u:secret@db.example/optuna")
    cfg = constraints.validate(make_config("job=worker", "search=distributed", "tracking=server"))
    assert cfg.job == Job.worker
    assert cfg.search.storage == "postgresql+psycopg://u:secret@db.example/optuna"
    assert cfg.tracking.uri == "http://127.0.0.1:5000"
    assert cfg.tracking.artifact_location is None
    assert stores.mask_url(cfg.search.storage) == "postgresql+psycopg://u:***@db.example/optuna"


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("search.storage=not-a-url", r"'search.storage' parameter must be a database URL"),
        ("search.heartbeat_interval=0", r"'search.heartbeat_interval' parameter must be >= 1"),
        ("search.grace_period=10", r"'search.grace_period' parameter must be > heartbeat_int"),
    ],
)
def test_heartbeat_settings_are_checked(make_config, override, match):
    with pytest.raises(UserError, match=match):
        constraints.validate(make_config(override))


def test_the_unreachable_message_scrubs_the_password():
    err = stores.unreachable(
        "search.storage",
        "postgresql+psycopg://u:hunter2@h/db",
        RuntimeError('FATAL: password "hunter2" rejected\nmore'),
    )
    assert str(err) == (
        'search.storage: cannot use postgresql+psycopg://u:***@h/db: FATAL: password "***" rejected'
    )


def test_no_url_in_the_environment_falls_back_to_localhost(make_config, monkeypatch):
    monkeypatch.delenv("REGTUNE_STORAGE", raising=False)
    cfg = make_config("search=distributed")
    assert cfg.search.storage.startswith("postgresql+psycopg://regtune@127.0.0.1")


@pytest.mark.e2e
def test_three_make_tune_at_once_on_one_sqlite_study_log_each_trial_once_and_report_once(
    tmp_path,
):
    """Issue 16, item 7: jobs started together share the study; each trial has one child
    run (none logged again by a job that finished first), and one job reports and decides
    while the others wait for it and print its result."""
    from cli_helpers import client, runs_by_role

    store = tmp_path / "store"
    args = ("search.n_trials=30", "search.progress_bar=false")
    procs = [cli(store, *args, outputs=tmp_path / f"out{i}") for i in range(3)]
    outputs = _finish(procs)

    by_role = runs_by_role(store)
    (parent,) = by_role["study"]
    assert parent.info.status == "FINISHED"
    trials = by_role["trial"]
    numbers = Counter(int(r.data.tags["pipeline.trial_number"]) for r in trials)
    assert max(numbers.values()) == 1, {n: k for n, k in numbers.items() if k > 1}
    assert {r.info.status for r in trials} == {"FINISHED"}
    assert len(trials) == 30

    c = client(store)
    run_id = parent.info.run_id
    assert len(c.get_metric_history(run_id, "best_cv_score")) == 1  # the report, once
    models = c.search_logged_models(
        experiment_ids=[parent.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    assert sorted(m.name for m in models) == ["best_model", "model_all_rows"]  # once each
    (version,) = c.search_model_versions("name = 'seed_regression'")
    assert parent.data.tags["promotion"] == "promoted"
    assert "decision.json" in {a.path for a in c.list_artifacts(run_id)}
    # Every job prints the one decision.
    assert all(f"seed_regression v{version.version}: promoted" in out for out, _ in outputs)
    assert sum("reported by another process" in err for _, err in outputs) == 2


@pytest.mark.e2e
def test_a_job_that_finds_the_study_reported_but_undecided_waits_for_the_decision(tmp_path):
    """A second job started while the first is deciding (the study reported, no decision
    yet) waits for the study's report lock and prints that decision; it decides nothing."""
    from cli_helpers import client

    store = tmp_path / "store"
    args = ("search.n_trials=6", "search.progress_bar=false")
    pause = {"PIPELINE_TEST_PAUSE_AFTER_REGISTER": "8"}
    first = cli(store, *args, extra_env=pause, outputs=tmp_path / "out0")
    c = client(store)

    def registered() -> bool:
        assert first.poll() is None
        try:
            return bool(c.search_model_versions("name = 'seed_regression'"))
        except Exception:  # no store yet
            return False

    _wait_for(registered, what="the first job's registered version")
    second = cli(store, *args, outputs=tmp_path / "out1")
    outputs = _finish([first, second])
    assert all("seed_regression v1: promoted" in out for out, _ in outputs), outputs
    (parent,) = [
        r
        for r in c.search_runs([c.get_experiment_by_name("regularization").experiment_id])
        if r.data.tags.get("pipeline.role") == "study"
    ]
    assert parent.info.status == "FINISHED"
    assert len(c.get_metric_history(parent.info.run_id, "registry_challenger_rmse")) == 1
    assert parent.data.tags["promotion"] == "promoted"
