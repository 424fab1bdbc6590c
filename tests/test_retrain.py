"""Registry and scheduled retraining, end to end: real subprocesses, real signals."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import cli, client, run, runs_by_role

pytestmark = pytest.mark.e2e

NOISY = ("experiment=nightly", "search.n_trials=8", "data.noise=20")
NAME = "seed_regression"


def aliases(store: Path) -> dict[str, str]:
    return {k: str(v) for k, v in client(store).get_registered_model(NAME).aliases.items()}


def versions(store: Path) -> dict[str, dict[str, str]]:
    found = client(store).search_model_versions(f"name = '{NAME}'")
    return {str(v.version): v.tags for v in sorted(found, key=lambda v: int(v.version))}


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A store through a night's life: first run, rerun, worse, better, rollback."""
    store = tmp_path_factory.mktemp("store")
    steps = {
        "first": run(store, *NOISY),
        "same": run(store, *NOISY),
        # Another seed is another study; no challenger beats the champion by 1000.
        "kept": run(store, *NOISY, "search.random_state=7", "registry.min_improvement=1000"),
        "rejected": run(
            store, *NOISY, "search.alpha_low=500", "search.alpha_high=1000", "search.penalties=[l1]"
        ),
    }
    steps["after_worse"] = aliases(store)
    steps["better"] = run(store, *NOISY, "data.noise=1")
    steps["after_better"] = aliases(store)
    steps["rollback"] = run(store, "job=rollback", "registry.reason='bad model'")
    steps["after_rollback"] = run(store, *NOISY, "data.noise=1")  # the rolled-back model again
    return store, steps


def test_first_run_registers_and_promotes(history):
    store, steps = history
    first = steps["first"]
    assert first.returncode == 0, first.stderr
    assert "seed_regression v1: promoted" in first.stdout
    tags = versions(store)["1"]
    for key in ("data_digest", "config_digest", "cv_score", "test_rmse", "parent_run_id"):
        assert tags[key]
    assert tags["mlflow.source.git.commit"]
    parent = client(store).get_run(tags["parent_run_id"])
    assert parent.data.tags["promotion"] == "promoted"
    assert "registry_challenger_rmse" in parent.data.metrics


def test_a_rerun_on_the_same_data_does_nothing(history):
    _, steps = history
    same = steps["same"]
    assert same.returncode == 0, same.stderr
    assert "Nothing to do: champion seed_regression v1" in same.stdout


def test_a_worse_challenger_keeps_the_champion_and_a_rejected_one_exits_3(history):
    store, steps = history
    assert steps["kept"].returncode == 0, steps["kept"].stderr
    assert "v2: kept" in steps["kept"].stdout
    rejected = steps["rejected"]
    assert rejected.returncode == 3, rejected.stderr
    assert "v3: rejected" in rejected.stdout and "worse than the baseline" in rejected.stdout
    assert steps["after_worse"] == {"champion": "1", "challenger": "3"}
    tags = versions(store)
    assert tags["2"]["promotion"] == "kept" and tags["3"]["promotion"] == "rejected"
    champion_metric = client(store).get_run(tags["2"]["parent_run_id"]).data.metrics
    assert "registry_champion_rmse" in champion_metric  # re-scored on that job's holdout


def test_better_data_promotes_and_the_old_champion_stays_retrievable(history):
    store, steps = history
    assert steps["better"].returncode == 0, steps["better"].stderr
    assert "v4: promoted" in steps["better"].stdout
    assert steps["after_better"]["champion"] == "4"
    tags = versions(store)
    assert tags["4"]["previous_champion"] == "1"
    assert tags["1"]["replaced_by"] == "4"
    from pipeline.tracking import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    old = mlflow.sklearn.load_model(f"models:/{NAME}/1")
    assert hasattr(old, "predict")


def test_rollback_restores_the_previous_champion_and_records_why(history):
    store, steps = history
    rollback = steps["rollback"]
    assert rollback.returncode == 0, rollback.stderr
    assert "version 4 -> 1" in rollback.stdout
    assert aliases(store)["champion"] == "1"
    tags = versions(store)
    for version in ("1", "4"):
        assert tags[version]["rollback_reason"] == "bad model"
        assert tags[version]["rollback_by"] and tags[version]["rollback_at"]
    again = steps["after_rollback"]  # the next night, same data as version 4: not re-promoted
    assert again.returncode == 0, again.stderr
    # its study's decision is history, reported with where the version stands now
    assert "v4: promoted" in again.stdout and "already finished" in again.stdout
    assert "now: version 4 was rolled back to version 1; the champion is version 1" in again.stdout
    assert aliases(store)["champion"] == "1"


def test_predict_scores_a_table_with_the_champion(history, tmp_path):
    from pipeline.config import SeedRegressionData
    from pipeline.data import load

    store, _ = history
    table = load(SeedRegressionData(noise=20)).X.head(15)
    source = tmp_path / "in.csv"
    table.to_csv(source, index=False)
    out = tmp_path / "out.parquet"
    result = run(store, "job=predict", f"predict.input={source}", f"predict.output={out}")
    assert result.returncode == 0, result.stderr
    assert f"wrote 15 predictions of {NAME} v1" in result.stdout
    assert (result.stdout + result.stderr).count("wrote ") == 1  # said once
    scored = pd.read_parquet(out)
    assert list(scored.columns) == [*table.columns, "prediction"]
    assert scored["prediction"].notna().all()

    # An output nobody can write (under /proc even root cannot): one line, exit 2.
    bad = run(store, "job=predict", f"predict.input={source}", "predict.output=/proc/o/p.csv")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert "error: predict.output: cannot write /proc/o/p.csv" in bad.stderr

    broken = table.astype({"x05": object})
    broken.loc[broken.index[2], "x05"] = "n/a"
    broken.to_csv(source, index=False)
    bad = run(store, "job=predict", f"predict.input={source}", f"predict.output={out}")
    assert bad.returncode == 2 and "column 'x05'" in bad.stderr and "row 2" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr

    table.drop(columns="x03").to_csv(source, index=False)
    bad = run(
        store, "job=predict", f"predict.input={source}", f"predict.output={tmp_path / 'b.csv'}"
    )
    assert bad.returncode == 2 and "lacks 1 column(s)" in bad.stderr and "'x03'" in bad.stderr
    assert not (tmp_path / "b.csv").exists()


def test_the_champion_serves_through_pyfunc_with_its_signature(history):
    from pipeline.config import SeedRegressionData
    from pipeline.data import load
    from pipeline.tracking import mlflow

    store, _ = history
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    inputs = [c.name for c in model.metadata.get_input_schema().inputs]
    assert inputs == [f"x{i:02d}" for i in range(20)]
    assert len(model.predict(load(SeedRegressionData()).X.head(3))) == 3


def test_a_second_retrain_on_the_same_store_exits_75(tmp_path):
    store = tmp_path / "store"
    first = cli(store, "experiment=nightly", "data=diabetes", "search.n_trials=400")
    lock = store / "retrain.lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().startswith("pid")):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.1)
    start = time.monotonic()
    second = run(store, "experiment=nightly", "data=diabetes", "search.n_trials=400")
    assert second.returncode == 75, second.stderr
    assert "another retraining job is running" in second.stderr
    assert time.monotonic() - start < 30
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 143, err


def test_sigterm_mid_study_moves_no_alias_and_the_rerun_resumes(tmp_path):
    from cli_helpers import complete_trials

    store = tmp_path / "store"
    args = ("experiment=nightly", "data=diabetes", "search.n_trials=30")
    # Trials take milliseconds: a pause per trial keeps the study running to be interrupted.
    proc = cli(store, *args, extra_env={"PIPELINE_TEST_PAUSE_IN_TRIAL": "0.1"})
    deadline = time.monotonic() + 120
    while complete_trials(store) < 3:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    runs = runs_by_role(store)
    assert all(r.info.status != "RUNNING" for r in runs["study"] + runs["trial"])
    assert runs["study"][0].info.status == "KILLED"
    assert not client(store).search_registered_models()  # nothing registered, no alias

    again = run(store, *args)
    assert again.returncode in (0, 3), again.stderr
    runs = runs_by_role(store)
    finished = [r for r in runs["trial"] if r.info.status == "FINISHED"]
    numbers = [int(r.data.tags["pipeline.trial_number"]) for r in finished]
    assert len(numbers) == len(set(numbers)) == 30  # no trial replayed; the killed one failed


def _signal_after_register(store: Path, args, sig, *, pause_s: float) -> tuple[int, str]:
    """A champion v1, then a job with ``args`` sent ``sig`` once it registered v2 (paused
    there ``pause_s`` seconds); its exit code and stderr."""
    from pipeline.registry import PAUSE_AFTER_REGISTER

    assert "v1: promoted" in run(store, "search.n_trials=8", "data.noise=20").stdout
    proc = cli(store, *args, extra_env={PAUSE_AFTER_REGISTER: str(pause_s)})
    deadline = time.monotonic() + 120
    while "2" not in versions(store):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_kill_9_between_register_and_promotion_keeps_the_champion_and_promotes_once(tmp_path):
    store = tmp_path / "store"
    better = ("search.n_trials=8", "data.noise=1")  # a better challenger, paused once registered
    _signal_after_register(store, better, signal.SIGKILL, pause_s=60)
    assert aliases(store) == {"champion": "1", "challenger": "1"}  # no alias moved
    assert "promotion" not in versions(store)["2"]

    again = run(store, *better)
    assert again.returncode == 0, again.stderr
    assert "v2: promoted" in again.stdout
    assert list(versions(store)) == ["1", "2"] and aliases(store)["champion"] == "2"
    rerun = run(store, *better).stdout  # decided: the record is reported, not redone
    assert "already finished" in rerun and "v2: promoted" in rerun
    assert list(versions(store)) == ["1", "2"] and aliases(store)["champion"] == "2"


def test_a_crash_between_register_and_promotion_does_not_promote_twice(tmp_path):
    """The state a kill leaves after registering: a version, no champion alias yet."""
    from pipeline.tracking import Tracker

    store = tmp_path / "store"
    args = ("search.n_trials=6", "data.noise=20")
    assert run(store, *args, "registry.enabled=false").returncode == 0
    (parent,) = runs_by_role(store)["study"]
    tracker = Tracker(
        uri=f"sqlite:///{store / 'mlflow.db'}",
        artifact_location=(store / "artifacts").as_uri(),
        experiment_name="regularization",
    )
    uri = f"runs:/{parent.info.run_id}/best_model"
    tracker.register(uri, NAME, run_id=parent.info.run_id, tags={"parent_run_id": "x"})
    assert not client(store).get_registered_model(NAME).aliases  # the champion is intact

    again = run(store, *args)
    assert again.returncode == 0, again.stderr
    assert "v1: promoted" in again.stdout
    assert list(versions(store)) == ["1"] and aliases(store)["champion"] == "1"
    third = run(store, *args)  # decided: reported, and the audit record kept as it was
    assert "already finished" in third.stdout and "v1: promoted" in third.stdout
    assert list(versions(store)) == ["1"]
    (parent,) = runs_by_role(store)["study"]
    assert parent.data.tags["promotion"] == "promoted"


def test_sigterm_during_registration_moves_no_champion_and_a_rerun_decides(tmp_path):
    """SIGTERM after the challenger is registered and before the gate's decision: exit 143,
    the champion where it was, the new version a challenger; the same command decides."""
    store = tmp_path / "store"
    better = ("search.n_trials=8", "data.noise=1")
    code, err = _signal_after_register(store, better, signal.SIGTERM, pause_s=5)
    assert code == 143, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    assert aliases(store) == {"champion": "1", "challenger": "2"}
    assert "promotion" not in versions(store)["2"]

    again = run(store, *better)
    assert again.returncode == 0, again.stderr
    assert "v2: promoted" in again.stdout
    assert list(versions(store)) == ["1", "2"] and aliases(store)["champion"] == "2"


def test_a_champion_that_cannot_score_todays_columns_is_not_an_empty_registry(tmp_path):
    """Yesterday's key feature is gone today: the challenger is rejected, not promoted as a
    'first champion'; registry.force=true promotes it on purpose."""
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=120, n_features=4, noise=1.0, random_state=3)
    table = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(y=y)
    path = tmp_path / "houses.csv"
    store = tmp_path / "store"
    args = (f"data=csv data.path={path} data.target=y search.n_trials=6").split()
    table.to_csv(path, index=False)
    assert "houses v1: promoted" in run(store, *args).stdout
    table.drop(columns=["a"]).rename(columns={"b": "b2"}).to_csv(path, index=False)
    today = run(store, *args)
    assert today.returncode == 0, today.stderr  # (exit 3 where registry.reject_exit_code=3)
    assert "houses v2: rejected" in today.stdout
    assert "champion version 1 cannot score today's data" in today.stdout
    champion = client(store).get_model_version_by_alias("houses", "champion")
    assert str(champion.version) == "1"
    forced = run(store, *args, "registry.force=true", "search.fresh=true")  # a new decision
    assert "houses v3: promoted" in forced.stdout, forced.stdout


class _Planted:
    """Unpickled, creates a file: what a pickle slipped into a model folder could do."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_tampered_model_files_are_refused_before_anything_is_loaded(tmp_path):
    import pickle
    from urllib.parse import urlparse

    from pipeline.config import SeedRegressionData
    from pipeline.data import load

    store = tmp_path / "store"
    assert "v1: promoted" in run(store, "search.n_trials=6", "data.noise=20").stdout
    version = client(store).get_model_version(NAME, "1")
    assert len(version.tags["model_digest"]) == 64
    logged = client(store).get_logged_model(version.source.removeprefix("models:/"))
    folder = Path(urlparse(logged.artifact_location).path)
    source = tmp_path / "in.csv"
    load(SeedRegressionData(noise=20)).X.head(5).to_csv(source, index=False)
    predict = ("job=predict", f"predict.input={source}", f"predict.output={tmp_path / 'o.csv'}")

    skops = folder / "model.skops"  # 1. a byte appended to the model
    original = skops.read_bytes()
    skops.write_bytes(original + b"\0")
    for args in (predict, ("job=verify",)):
        bad = run(store, *args)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert "changed since it was registered" in bad.stderr.strip().splitlines()[-1]
    skops.write_bytes(original)
    assert run(store, "job=verify").returncode == 0

    planted = tmp_path / "planted"  # 2. the MLmodel pointed at a pickle
    (folder / "model.pkl").write_bytes(pickle.dumps(_Planted(planted)))
    mlmodel = folder / "MLmodel"
    text = mlmodel.read_text().replace(
        "serialization_format: skops", "serialization_format: cloudpickle"
    )
    mlmodel.write_text(text.replace("model.skops", "model.pkl"))
    bad = run(store, *predict)
    assert bad.returncode == 2 and "not a skops scikit-learn model" in bad.stderr, bad.stderr
    retrain = run(store, "search.n_trials=6", "data.noise=1")  # re-scores the champion
    assert retrain.returncode == 2 and "not a skops scikit-learn model" in retrain.stderr
    assert not planted.exists()  # nothing was unpickled
    assert aliases(store)["champion"] == "1"


def test_the_gate_re_scores_the_champion_s_judged_fit_not_its_refit_on_all_rows(tmp_path):
    """The registered version saw every row, today's holdout included; re-scored as such it
    would look better than it is and never be replaced. The gate loads the fit it judged."""
    store = tmp_path / "store"
    args = ("search.n_trials=6", "data.noise=20")
    assert "v1: promoted" in run(store, *args).stdout
    tags = versions(store)["1"]
    assert tags["fitted_on"] == "all 100 rows (80 training + 20 holdout)"
    assert tags["judged_model_uri"].startswith("models:/m-")
    assert len(tags["judged_model_digest"]) == 64
    again = run(store, *args, "search.fresh=true")  # the same data, split and candidate
    assert again.returncode == 0, again.stderr
    assert "v2: kept" in again.stdout
    parent = next(
        r
        for r in runs_by_role(store)["study"]
        if r.data.tags.get("registry.model", "").endswith("/2")
    )
    assert parent.data.metrics["registry_gain_vs_champion"] == 0.0  # the same judged fit


def test_a_changed_schema_stops_the_retraining_job_unless_accepted(tmp_path):
    """Issue 15, item 5: a column gone, a new one, or a changed type stops job=retrain
    before any run is created (exit 65, one line naming them); allow_schema_change=true
    retrains on purpose and records the change on the version."""
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=120, n_features=4, noise=1.0, random_state=3)
    table = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(y=y)
    path = tmp_path / "houses.csv"
    store = tmp_path / "store"
    args = ("experiment=nightly", f"data.path={path}", "search.n_trials=6")
    args = (*args, "data=csv", "data.target=y")
    table.to_csv(path, index=False)
    first = run(store, *args)
    assert "houses v1: promoted" in first.stdout, first.stderr
    table.drop(columns=["a"]).assign(e=table["a"] * 2, c=table["c"].round().astype(int)).to_csv(
        path, index=False
    )
    parents = len(runs_by_role(store)["study"])
    stopped = run(store, *args)
    assert stopped.returncode == 65, (stopped.stdout, stopped.stderr)
    assert "Traceback" not in stopped.stderr
    (line,) = [x for x in stopped.stderr.splitlines() if x.startswith("error")]
    assert "are not the champion's (houses v1)" in line
    assert "column(s) 'a' gone; new column(s) 'e'; type changed: 'c' double -> long" in line
    assert "registry.allow_schema_change=true" in line
    assert len(runs_by_role(store)["study"]) == parents  # no run created
    assert len(client(store).search_model_versions("name = 'houses'")) == 1
    accepted = run(store, *args, "registry.allow_schema_change=true")
    # Retrained; the champion cannot score the new columns, so the gate still refuses to
    # promote (exit 3 in experiment=nightly) until registry.force=true says so.
    assert accepted.returncode == 3, accepted.stderr
    assert "champion version 1 cannot score today's data" in accepted.stdout
    (v2,) = client(store).search_model_versions("name = 'houses' and version_number = 2")
    assert v2.tags["schema_change"].startswith("since houses v1: column(s) 'a' gone")
