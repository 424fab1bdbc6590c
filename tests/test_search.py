from __future__ import annotations

import dataclasses

import numpy as np
import optuna
import pytest
from sklearn.model_selection import KFold, cross_val_score

from pipeline.config import Penalty, SearchConfig
from pipeline.models import Candidate
from pipeline.search import CVSetup, SearchSpace, TrialResult, evaluate, fingerprint
from pipeline.study import Budget, Study
from pipeline.trials import clearly_worse


@pytest.fixture
def setup(make_setup) -> CVSetup:
    return make_setup(
        n_splits=4, max_iter=10_000, n_samples=60, n_features=8, n_informative=3, noise=5.0
    )


@pytest.fixture(scope="module")
def wide() -> CVSetup:
    """80 rows, 150 features: the array path, where trials can be pruned."""
    import pandas as pd
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=80, n_features=150, n_informative=5, noise=1, random_state=0)
    return CVSetup.build(
        pd.DataFrame(X).add_prefix("x"),
        pd.Series(y),
        n_splits=5,
        random_state=0,
        scoring="neg_root_mean_squared_error",
        numeric=[f"x{i}" for i in range(150)],
        categorical=[],
        max_iter=10_000,
        tol=1e-4,
    )


def _space(*penalties: Penalty) -> SearchSpace:
    return SearchSpace(penalties or tuple(Penalty), 1e-3, 10.0, 0.1, 0.9)


@pytest.mark.parametrize(
    "candidate",
    [
        Candidate(Penalty.l1, 0.3),
        Candidate(Penalty.l2, 3.0),
        Candidate(Penalty.elasticnet, 0.2, 0.5),
    ],
)
def test_cv_scores_equal_cross_val_score_on_the_same_folds(setup, candidate):
    result = evaluate(setup, candidate, number=3)
    folds = KFold(n_splits=4, shuffle=True, random_state=0)
    expected = cross_val_score(
        setup.estimator(candidate), setup.X, setup.y, cv=folds, scoring=setup.scoring
    )
    np.testing.assert_allclose(result.cv_scores, expected, rtol=1e-12)
    assert result.cv_score_mean == pytest.approx(expected.mean())
    assert result.cv_score_std == pytest.approx(expected.std())
    assert result.number == 3 and result.converged


def test_non_convergence_is_recorded_not_shown(setup):
    tight = dataclasses.replace(setup, max_iter=1, tol=1e-12)
    result = evaluate(tight, Candidate(Penalty.l1, 1e-3))  # warnings are errors in this suite
    assert not result.converged


def test_fingerprint_changes_with_data_and_settings_not_budget():
    base = dict(data_digest="d1", split={"test_size": 0.2})
    fp = fingerprint(**base, cfg=SearchConfig())
    assert fp == fingerprint(**base, cfg=SearchConfig(n_trials=500, timeout=9.0, fresh=True))
    assert fp != fingerprint(data_digest="d2", split={"test_size": 0.2}, cfg=SearchConfig())
    assert fp != fingerprint(data_digest="d1", split={"test_size": 0.3}, cfg=SearchConfig())
    assert fp != fingerprint(**base, cfg=SearchConfig(alpha_high=10.0))
    assert fp != fingerprint(**base, cfg=SearchConfig(n_splits=3))
    assert fp != fingerprint(**base, cfg=SearchConfig(scoring="r2"))
    assert fp != fingerprint(**base, cfg=SearchConfig(penalties=[Penalty.l1]))


def _open(tmp_path, fp="abc", fresh=False, space=None) -> Study:
    return Study.open(
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        study_prefix="t",
        fingerprint=fp,
        seed=0,
        space=space or _space(),
        guess_alpha=0.1,
        fresh=fresh,
    )


def _run(study: Study, setup: CVSetup, n_trials: int, space=None) -> list[TrialResult]:
    seen: list[TrialResult] = []
    study.optimize(setup, space or _space(), Budget(n_trials, None, seen.append))
    return seen


def test_guesses_come_first_and_l1_ratio_only_for_elasticnet(tmp_path, setup):
    study = _open(tmp_path)
    seen = _run(study, setup, 12)
    assert [r.number for r in seen] == list(range(12))
    assert seen[0].candidate == Candidate(Penalty.l1, 0.1)
    assert seen[1].candidate == Candidate(Penalty.l2, 0.1)
    for r in seen:
        assert (r.candidate.l1_ratio is not None) == (r.candidate.penalty == Penalty.elasticnet)
        assert 1e-3 <= r.candidate.alpha <= 10.0
    score = study.best()[2]
    assert score == max(r.cv_score_mean for r in seen)
    assert score >= max(seen[0].cv_score_mean, seen[1].cv_score_mean)


def test_trials_run_on_one_blas_thread_and_the_limit_is_lifted_after(tmp_path, setup):
    from threadpoolctl import threadpool_info

    def threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    before = threads()
    during: list[set[int]] = []
    study = _open(tmp_path)
    study.optimize(setup, _space(), Budget(3, None, lambda result: during.append(threads())))
    assert during == [{1}] * 3
    assert threads() == before


def test_trials_frame_and_importances_come_from_the_study(tmp_path, setup):
    study = _open(tmp_path)
    seen = _run(study, setup, 8)
    frame = study.trials_frame()
    assert list(frame["number"]) == list(range(8))
    assert list(frame.columns) == [
        "number",
        "penalty",
        "alpha",
        "l1_ratio",
        "cv_score",
        "cv_std",
        "cv_se",
        "n_nonzero",
        "train_score",
    ]
    np.testing.assert_allclose(frame["cv_score"], [r.cv_score_mean for r in seen])
    se = [np.std(r.cv_scores, ddof=1) / np.sqrt(len(r.cv_scores)) for r in seen]
    np.testing.assert_allclose(frame["cv_se"], se)
    nonzero = [np.count_nonzero(r.estimator[-1].coef_) for r in seen]
    assert list(frame["n_nonzero"]) == nonzero
    np.testing.assert_allclose(frame["train_score"], [np.mean(r.train_scores) for r in seen])
    assert (frame["train_score"] >= frame["cv_score"] - 1e-9).mean() > 0.5
    assert set(study.param_importances()) == {"penalty", "alpha"}


def test_guess_outside_the_space_is_not_enqueued(tmp_path, setup):
    space = _space(Penalty.elasticnet)
    seen = _run(_open(tmp_path, space=space), setup, 3, space)
    assert all(r.candidate.penalty == Penalty.elasticnet for r in seen)


def test_resume_reaches_the_budget_without_replaying(tmp_path, setup):
    first = _open(tmp_path)
    assert not first.resumed
    _run(first, setup, 4)
    again = _open(tmp_path)
    assert again.resumed and again.name == first.name
    seen = _run(again, setup, 10)
    assert [r.number for r in seen] == list(range(4, 10))
    assert again.n_complete() == 10
    assert _run(_open(tmp_path), setup, 10) == []
    fresh = _open(tmp_path, fresh=True)
    assert not fresh.resumed and fresh.name != first.name
    other = _open(tmp_path, fp="other")
    assert not other.resumed


def test_parent_run_id_and_finished_flag_persist(tmp_path):
    study = _open(tmp_path)
    assert study.parent_run_id is None and not study.finished
    study.parent_run_id = "run123"
    study.mark_finished()
    again = _open(tmp_path)
    assert again.parent_run_id == "run123" and again.finished


def test_a_failing_candidate_fails_its_trial_and_never_wins(tmp_path, setup, monkeypatch):
    import pipeline.search as search

    real = search.evaluate

    def flaky(s, candidate, *, number=-1, on_fold=None):
        if number % 2:
            raise ValueError("Input contains NaN")
        if number == 2:
            return TrialResult(number, candidate, [float("nan")] * 4, 0.0, True, None)
        return real(s, candidate, number=number, on_fold=on_fold)

    monkeypatch.setattr(search, "evaluate", flaky)
    study = _open(tmp_path)
    seen = _run(study, setup, 6)
    # Failures do not use up the budget, but the process gives up after 2 x 6 attempts.
    assert [r.number for r in seen] == list(range(12))
    failed = [r for r in seen if not r.ok]
    assert [r.number for r in failed] == [1, 2, 3, 5, 7, 9, 11]
    assert failed[0].error == "ValueError: Input contains NaN"
    assert "nan" in failed[1].error
    assert study.counts() == {"complete": 5, "pruned": 0, "failed": 7}
    assert study.best()[0] in (0, 4, 6, 8, 10)
    states = {
        t.number: t.state
        for t in optuna.load_study(
            study_name=study.name, storage=f"sqlite:///{tmp_path / 'optuna.db'}"
        ).trials
    }
    assert states[2] == optuna.trial.TrialState.FAIL


def test_failed_trials_do_not_use_up_the_budget(tmp_path, setup, monkeypatch):
    import pipeline.search as search

    real = search.evaluate

    def first_fails(s, candidate, *, number=-1, on_fold=None):
        if number == 0:
            raise ValueError("boom")
        return real(s, candidate, number=number, on_fold=on_fold)

    monkeypatch.setattr(search, "evaluate", first_fails)
    study = _open(tmp_path)
    _run(study, setup, 4)
    assert study.counts() == {"complete": 4, "pruned": 0, "failed": 1}


def test_the_fold_pruner_stops_only_trials_clearly_worse_on_every_fold():
    best = [-1.0, -1.2, -0.9, -1.1]  # the best trial's spread: 0.3
    assert not clearly_worse([-1.25], best)  # worse, but within the spread
    assert not clearly_worse([-2.0, -1.0], best)  # clearly worse on one fold only
    assert clearly_worse([-1.5], best)
    assert clearly_worse([-2.0, -1.9], best)


def test_pruned_trials_count_towards_the_budget_and_are_reported(tmp_path, wide):
    study = _open(tmp_path)
    seen = _run(study, wide, 25)
    counts = study.counts()
    assert counts["complete"] + counts["pruned"] == 25 == len(seen)
    pruned = [r for r in seen if r.pruned]
    assert pruned and counts["pruned"] == len(pruned)
    assert all(0 < len(r.cv_scores) < 5 and r.estimator is None for r in pruned)
    number, _, score = study.best()
    assert number not in {r.number for r in pruned}
    assert score == max(r.cv_score_mean for r in seen if r.ok)


def _stored(path, study: Study) -> list[optuna.trial.FrozenTrial]:
    """The study's trials as another process reads them from the storage."""
    return optuna.load_study(study_name=study.name, storage=f"sqlite:///{path}").get_trials()


def test_no_trial_starts_after_the_timeout(tmp_path, setup, monkeypatch):
    from pipeline.search import PAUSE_IN_TRIAL

    monkeypatch.setenv(PAUSE_IN_TRIAL, "0.1")
    study = _open(tmp_path)
    study.optimize(setup, _space(), Budget(500, 0.5, print))
    assert 1 <= study.n_done() <= 20


_PROCESS = """
import logging, sys
from pathlib import Path
from pipeline.search import CVSetup, SearchSpace
from pipeline.storage import creation_lock
from pipeline.study import Budget, Study
from pipeline.config import Penalty
from pipeline.data import load
from pipeline.config import SeedRegressionData

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
ds = load(SeedRegressionData(n_samples=60, n_features=8, n_informative=3, noise=5.0))
setup = CVSetup.build(ds.X, ds.y, n_splits=4, random_state=0,
    scoring="neg_root_mean_squared_error", numeric=list(ds.X.columns), categorical=[],
    max_iter=10_000, tol=1e-4)
space = SearchSpace(tuple(Penalty), 1e-3, 10.0, 0.1, 0.9)
url = sys.argv[1]
fingerprint = sys.argv[2] if len(sys.argv) > 2 else "two"
with creation_lock(url):
    study = Study.open(storage=url, study_prefix="t", fingerprint=fingerprint, seed=0,
        space=space, guess_alpha=0.1, fresh=False)
Path(url.removeprefix("sqlite:///") + f".{fingerprint}.opened").touch()  # for the test
ran = study.optimize(setup, space, Budget(12, None, lambda r: None))
print(ran)
"""


def test_two_processes_share_a_local_study_and_the_budget_stays_exact(tmp_path):
    import os
    import subprocess
    import sys

    from pipeline.config import PROJECT_ROOT
    from pipeline.search import PAUSE_IN_TRIAL

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    env = {**os.environ, PAUSE_IN_TRIAL: "0.5"}  # 12 trials of half a second

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", _PROCESS, url],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = start()
    _wait_for(tmp_path / "optuna.db.two.opened", first)
    second = start()
    out = [p.communicate(timeout=120) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], out
    assert int(out[0][0]) + int(out[1][0]) == 12 and int(out[1][0]) > 0
    (name,) = optuna.get_all_study_names(url)
    trials = optuna.load_study(study_name=name, storage=url).get_trials()
    assert [t.number for t in trials] == list(range(12))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


def _wait_for(marker, process) -> None:
    """Until ``process`` has opened its study (its marker file exists)."""
    import time

    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
        time.sleep(0.05)


def test_studies_sharing_a_sqlite_file_do_not_wait_for_each_other(tmp_path):
    import os
    import subprocess
    import sys

    from pipeline.config import PROJECT_ROOT
    from pipeline.search import PAUSE_IN_TRIAL

    url = f"sqlite:///{tmp_path / 'optuna.db'}"

    def start(fingerprint: str, pause: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", _PROCESS, url, fingerprint],
            cwd=PROJECT_ROOT,
            env={**os.environ, PAUSE_IN_TRIAL: pause},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    slow = start("slow", "1")  # 12 trials of a second
    _wait_for(tmp_path / "optuna.db.slow.opened", slow)
    quick = start("quick", "0")
    out, err = quick.communicate(timeout=60)
    assert quick.returncode == 0, err
    assert int(out) == 12
    assert slow.poll() is None, "the other study ended first: nothing was tested"
    slow.kill()
    slow.communicate()


def test_pruned_trials_keep_their_fold_scores_as_optuna_intermediate_values(tmp_path, wide):
    study = _open(tmp_path)
    seen = {r.number: r for r in _run(study, wide, 25)}
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    for t in optuna.load_study(study_name=study.name, storage=url).trials:
        values = [t.intermediate_values[k] for k in sorted(t.intermediate_values)]
        assert values == seen[t.number].cv_scores
        assert len(values) == (5 if t.state == optuna.trial.TrialState.COMPLETE else len(values))


def test_an_interrupted_trial_is_failed_in_optuna_and_handed_on_as_failed(tmp_path, setup):
    study = _open(tmp_path)
    seen: list[TrialResult] = []

    def stop_at_third(result: TrialResult) -> None:
        seen.append(result)
        if len(seen) == 2:
            raise KeyboardInterrupt  # as a Ctrl-C would, during the next trial

    import pipeline.search as search

    real = search.evaluate

    def interrupted(s, candidate, *, number=-1, on_fold=None):
        if number == 2:
            raise KeyboardInterrupt
        return real(s, candidate, number=number, on_fold=on_fold)

    search_module = search
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search_module, "evaluate", interrupted)
        with pytest.raises(KeyboardInterrupt):
            study.optimize(setup, _space(), Budget(5, None, seen.append))
    assert [r.number for r in seen] == [0, 1, 2]
    assert seen[2].error == "interrupted (KeyboardInterrupt)"
    assert study.trials()[2].state == optuna.trial.TrialState.FAIL
    # The next run goes on from there, numbering on from Optuna's trials.
    rest = _run(study, setup, 5)
    assert [r.number for r in rest] == [3, 4, 5]


_PLAIN_HANGING_CLIENT = """
import sys, time, optuna
storage = optuna.storages.RDBStorage(sys.argv[1], heartbeat_interval=1, grace_period=2)
study = optuna.load_study(study_name=sys.argv[2], storage=storage)
def objective(trial):
    trial.suggest_categorical("penalty", ["l1", "l2", "elasticnet"])
    trial.suggest_float("alpha", 1e-3, 10.0, log=True)
    print("running", flush=True)
    time.sleep(600)
study.optimize(objective, n_trials=1)
"""


def test_a_trial_whose_process_stopped_beating_is_failed_and_retried(tmp_path, setup):
    import subprocess
    import sys
    import warnings

    study = Study.open(
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        study_prefix="t",
        fingerprint="hb",
        seed=0,
        space=_space(),
        guess_alpha=0.1,
        fresh=False,
        heartbeat_interval=1,
        grace_period=2,
    )
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", _PLAIN_HANGING_CLIENT, url, study.name],
            stdout=subprocess.PIPE,
            text=True,
        )
    assert client.stdout.readline().strip() == "running"
    client.kill()  # kill -9: its trial stays RUNNING, with a heartbeat that goes stale
    client.wait()
    client.stdout.close()
    seen = _run(study, setup, 4)
    (dead,) = [t for t in study.trials() if t.state == optuna.trial.TrialState.FAIL]
    assert dead.number == 0  # the first guess, taken by the client
    retried = [r for r in seen if r.retry_of == dead.number]
    assert len(retried) == 1 and retried[0].candidate == Candidate(Penalty.l1, 0.1)
    assert study.counts() == {"complete": 4, "pruned": 0, "failed": 1}


def test_a_trial_whose_process_died_before_its_first_heartbeat_is_failed():
    """Created, then killed before its objective (and Optuna's heartbeat) started: Optuna's
    stale-trial check cannot see it, so the budget's wait would never end; it is failed and
    retried once, as a stale trial is."""
    import optuna

    from pipeline.trials import STARTED, fail_unstarted

    study = optuna.create_study()
    dead, live = study.ask(), study.ask()
    live.set_user_attr(STARTED, True)
    fail_unstarted(study, grace_s=3600)
    assert {t.state.name for t in study.trials} == {"RUNNING"}  # not yet past the grace
    fail_unstarted(study, grace_s=0)
    states = {t.number: t.state.name for t in study.trials}
    assert states == {dead.number: "FAIL", live.number: "RUNNING", 2: "WAITING"}
    # run once more, linked to the dead trial as Optuna's own stale-trial retry links it
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        assert retry.retried_trial_number(study.trials[2]) == dead.number
