"""A plain Optuna client joins a running job's study: the MLflow record stays Optuna's.

Optuna's documented way to add workers is another process calling
``optuna.load_study(...).optimize(...)`` on the same storage. Here one does, on the default
SQLite study, while ``python -m pipeline`` runs; afterwards every child run must be the
Optuna trial of the same number (params and score), none twice and none missing.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import optuna
import pytest
from cli_helpers import cli, client

from pipeline import data, validate
from pipeline.search import CVSetup, SearchSpace
from pipeline.split import holdout
from pipeline.trials import Objective

pytestmark = pytest.mark.e2e


def _objective(cfg) -> Objective:
    """The pipeline's own objective on the job's training rows and folds, as a user of the
    package would build it for a plain Optuna client."""
    dataset = validate.check(
        data.load(cfg.data),
        data=cfg.data,
        n_splits=cfg.search.n_splits,
        test_size=cfg.split.test_size,
        shuffle=cfg.split.shuffle,
    )
    parts = holdout(dataset, **asdict(cfg.split))
    setup = CVSetup.build(
        parts.X_train,
        parts.y_train,
        n_splits=cfg.search.n_splits,
        random_state=cfg.search.random_state,
        scoring="neg_root_mean_squared_error",
        numeric=list(parts.X_train.columns),
        categorical=[],
        max_iter=cfg.search.max_iter,
        tol=cfg.search.tol,
    )
    return Objective(setup, SearchSpace.from_config(cfg.search), prune=False)


def _study_name(url: str, job) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert job.poll() is None, job.communicate()
        try:
            (summary,) = optuna.get_all_study_summaries(url, include_best_trial=False)
            if summary.n_trials > 3:
                return summary.study_name
        except ValueError:  # no study yet
            pass
        time.sleep(0.1)
    raise AssertionError("the job created no study")


def test_a_plain_optuna_client_joining_a_job_keeps_the_mlflow_record_exact(tmp_path, make_config):
    job = cli(
        tmp_path,
        "search.n_trials=40",
        "search.prune=false",
        "registry.enabled=false",
        extra_env={"PIPELINE_TEST_PAUSE_IN_TRIAL": "0.2"},
    )
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    name = _study_name(url, job)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    plain = optuna.load_study(study_name=name, storage=url)
    plain.optimize(_objective(make_config()), n_trials=5)
    assert job.poll() is None, "the job ended before the client joined: nothing was tested"
    _, err = job.communicate(timeout=300)
    assert job.returncode == 0, err

    trials = {t.number: t for t in optuna.load_study(study_name=name, storage=url).trials}
    mlflow = client(tmp_path)
    (experiment,) = [e for e in mlflow.search_experiments() if e.name == "regularization"]
    runs = mlflow.search_runs(
        [experiment.experiment_id], "tags.`pipeline.role` = 'trial'", max_results=1000
    )
    numbers = [int(r.data.tags["pipeline.trial_number"]) for r in runs]
    assert sorted(numbers) == sorted(trials)  # none twice, none missing
    assert len(trials) == 40
    for run in runs:
        trial = trials[int(run.data.tags["pipeline.trial_number"])]
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert run.data.params["penalty"] == trial.params["penalty"]
        assert float(run.data.params["alpha"]) == pytest.approx(trial.params["alpha"], rel=1e-12)
        assert run.data.metrics["cv_score_mean"] == pytest.approx(trial.value, rel=1e-9)
    (parent,) = mlflow.search_runs(
        [experiment.experiment_id], "tags.`pipeline.role` = 'study'", max_results=10
    )
    best = max((t for t in trials.values()), key=lambda t: t.value)
    assert parent.data.metrics["best_trial_number"] == best.number
    assert parent.data.metrics["best_cv_score"] == pytest.approx(best.value, rel=1e-12)
