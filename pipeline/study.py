"""The Optuna study: created or resumed by fingerprint, run by ``study.optimize``.

Every trial is asked, run and told by Optuna's ``Study.optimize`` on Optuna's storage:
Optuna's heartbeat runs, stale trials are failed and retried, pruning goes through
``trial.report`` and a pruner, and any Optuna client can read or join the study. Each
finished trial reaches ``on_trial`` as a ``TrialResult`` numbered as Optuna numbered it.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import optuna
import pandas as pd
from threadpoolctl import threadpool_limits

import pipeline.trials
from pipeline import interrupt
from pipeline.models import Candidate
from pipeline.search import CVSetup, SearchSpace, TrialResult
from pipeline.storage import (
    TRIAL_LOCK,
    new_study_name,
    newest_study,
    open_storage,
    shared_storage,
    storage_lock,
)
from pipeline.trials import FOLDS, FoldPruner, Objective, candidate_of, enqueue_guesses

log = logging.getLogger(__name__)

TrialState = optuna.trial.TrialState
# Trial states that count towards the budget, and those that may yet count.
DONE = (TrialState.COMPLETE, TrialState.PRUNED)
LIVE = (*DONE, TrialState.RUNNING)


@dataclass(frozen=True)
class Budget:
    """How many trials, for how long, and what to call after each."""

    n_trials: int
    timeout: float | None
    on_trial: Callable[[TrialResult], None]
    show_progress_bar: bool = False
    prune: bool = True
    poll_s: float = 1.0
    grace_s: float = 30.0  # a trial silent this long belongs to a dead process


class Study:
    """An Optuna study identified by a fingerprint, resumable across processes."""

    FINGERPRINT = "fingerprint"
    CREATED = "created"
    PARENT_RUN = "mlflow_parent_run_id"
    FINISHED = "finished"

    def __init__(self, study: optuna.Study, *, resumed: bool, storage_url: str):
        self.optuna_study = study
        self.resumed = resumed
        self.lock = storage_lock(storage_url)

    @classmethod
    def open(
        cls,
        *,
        storage: str,
        study_prefix: str,
        fingerprint: str,
        seed: int | None,
        space: SearchSpace,
        guess_alpha: float,
        fresh: bool,
        heartbeat_interval: int = 10,
        grace_period: int = 30,
    ) -> Study:
        """Resume the newest study with this fingerprint, or create one (always with ``fresh``).

        Call it inside ``creation_lock(storage)``: of processes starting at once, one creates it.
        """
        # Optuna would print a traceback per failed trial; the pipeline logs one line instead.
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        backend = open_storage(
            storage, heartbeat_interval=heartbeat_interval, grace_period=grace_period
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # With workers in parallel, the constant liar keeps them off each other's candidates.
            sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=shared_storage(storage))
        found = None if fresh else newest_study(backend, cls.FINGERPRINT, fingerprint, cls.CREATED)
        if found is not None:
            study = optuna.load_study(
                study_name=found, storage=backend, sampler=sampler, pruner=FoldPruner()
            )
            return cls(study, resumed=True, storage_url=storage)
        study = optuna.create_study(
            study_name=new_study_name(backend, f"{study_prefix}-{fingerprint}"),
            storage=backend,
            sampler=sampler,
            direction="maximize",
            pruner=FoldPruner(),
        )
        study.set_user_attr(cls.FINGERPRINT, fingerprint)
        study.set_user_attr(cls.CREATED, datetime.now(UTC).isoformat())
        enqueue_guesses(study, space, guess_alpha)
        return cls(study, resumed=False, storage_url=storage)

    @property
    def name(self) -> str:
        return self.optuna_study.study_name

    @property
    def fingerprint(self) -> str:
        return self.optuna_study.user_attrs[self.FINGERPRINT]

    @property
    def parent_run_id(self) -> str | None:
        return self.optuna_study.user_attrs.get(self.PARENT_RUN)

    @parent_run_id.setter
    def parent_run_id(self, run_id: str) -> None:
        self.optuna_study.set_user_attr(self.PARENT_RUN, run_id)

    @property
    def finished(self) -> bool:
        return bool(self.optuna_study.user_attrs.get(self.FINISHED))

    def mark_finished(self) -> None:
        self.optuna_study.set_user_attr(self.FINISHED, True)

    def trials(self, *states: TrialState) -> list[optuna.trial.FrozenTrial]:
        return self.optuna_study.get_trials(deepcopy=False, states=states or None)

    def n_complete(self) -> int:
        return len(self.trials(TrialState.COMPLETE))

    def n_running(self) -> int:  # in any process
        return len(self.trials(TrialState.RUNNING))

    def n_done(self) -> int:
        """Trials that count towards the budget: complete or pruned."""
        return len(self.trials(*DONE))

    def counts(self) -> dict[str, int]:
        """How many trials completed, were pruned, and failed."""
        states = [t.state for t in self.trials()]
        return {
            "complete": states.count(TrialState.COMPLETE),
            "pruned": states.count(TrialState.PRUNED),
            "failed": states.count(TrialState.FAIL),
        }

    def failed_candidates(self) -> dict[int, tuple[Candidate, str]]:
        """Every failed trial that drew its params: its candidate and why it failed."""
        dead = "its process stopped sending heartbeats (killed or machine lost)"
        return {
            t.number: (candidate_of(t.params), t.user_attrs.get("fail_reason", dead))
            for t in self.trials(TrialState.FAIL)
            if {"penalty", "alpha"} <= t.params.keys()
        }

    def complete_candidates(self) -> dict[int, Candidate]:
        """Every finished trial's candidate, by trial number."""
        return {t.number: candidate_of(t.params) for t in self.trials(TrialState.COMPLETE)}

    def trials_frame(self) -> pd.DataFrame:
        """One row per complete trial: its params, CV and train scores, the CV score's standard
        error (fold scores' sample std / sqrt(folds)) and its refit's non-zero coefficients."""
        rows = []
        for t in self.trials(TrialState.COMPLETE):
            folds = t.user_attrs.get(FOLDS, {})
            cv = folds.get("cv") or [t.value]
            rows.append(
                {
                    "number": t.number,
                    "penalty": t.params["penalty"],
                    "alpha": t.params["alpha"],
                    "l1_ratio": t.params.get("l1_ratio"),
                    "cv_score": t.value,
                    "cv_std": float(np.std(cv)),
                    "cv_se": float(np.std(cv, ddof=1) / np.sqrt(len(cv))) if len(cv) > 1 else 0.0,
                    "n_nonzero": folds.get("n_nonzero", np.nan),
                    "train_score": float(np.mean(folds.get("train") or [np.nan])),
                }
            )
        return pd.DataFrame(rows).sort_values("number", ignore_index=True)

    def param_importances(self) -> dict[str, float]:
        """Optuna's fANOVA importance of each parameter (empty when it cannot be computed)."""
        try:
            return optuna.importance.get_param_importances(
                self.optuna_study, params=["penalty", "alpha"]
            )
        except (RuntimeError, ValueError):
            return {}

    def best(self) -> tuple[int, Candidate, float]:
        """The best trial's number, candidate and CV score."""
        best = self.optuna_study.best_trial
        return best.number, candidate_of(best.params), float(best.value)

    def optimize(self, setup: CVSetup, space: SearchSpace, budget: Budget) -> int:
        """Run trials until ``budget.n_trials`` have completed or been pruned in this study
        (all processes counted); return the number completed here.

        Each trial is one ``study.optimize(n_trials=1)`` call, asked for under the storage's
        trial lock while the done and running trials number fewer than the budget (the lock
        is released as soon as the trial exists): any number of pipeline workers end with
        exactly ``n_trials`` done. While the last trials run elsewhere this process waits,
        so a trial that fails there (or whose worker dies) is retried here. Failed trials
        do not count; this process gives up after as many attempts again as were missing.
        Trials run with one BLAS thread: their linear algebra is small, and the trial
        logger needs the other core.
        """
        remaining = budget.n_trials - self.n_done()
        deadline = None if budget.timeout is None else time.monotonic() + budget.timeout
        objective = Objective(setup, space, prune=budget.prune)
        bar = _progress_bar(budget.show_progress_bar, budget.n_trials, budget.n_trials - remaining)
        done = 0
        try:
            with threadpool_limits(limits=1):
                for _ in range(2 * max(remaining, 0)):
                    result = self._one_trial(objective, budget, deadline, bar)
                    if result is None:
                        break
                    done += result.ok
                    interrupt.check()
        finally:
            if bar is not None:
                bar.close()
        return done

    def _one_trial(self, objective: Objective, budget: Budget, deadline, bar):
        """Run one trial when the budget has room (waiting for others if need be); None once
        the budget is spent or the time is up."""
        while True:
            with contextlib.ExitStack() as gate:
                gate.enter_context(self.lock.hold(TRIAL_LOCK))
                live = self.trials(*LIVE)
                n_done = sum(t.state in DONE for t in live)
                if bar is not None:
                    bar.n = n_done
                    bar.refresh()
                expired = deadline is not None and time.monotonic() >= deadline
                if n_done >= budget.n_trials or expired:
                    return None
                if len(live) < budget.n_trials:
                    objective.on_start = gate.close  # the trial exists: others may ask
                    return self._run(objective, budget, bar)
            interrupt.check()
            time.sleep(budget.poll_s)  # the last trials run in other processes; one may fail
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.optuna_study)
            pipeline.trials.fail_unstarted(self.optuna_study, budget.grace_s)

    def _run(self, objective: Objective, budget: Budget, bar) -> TrialResult | None:
        results: list[TrialResult] = []

        def finished(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            result = objective.results.pop(trial.number, None)
            if result is None:
                return
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                retry = optuna.storages.RetryHeartbeatStaleTrialCallback
                result.retry_of = retry.retried_trial_number(trial)
            results.append(result)
            if bar is not None and trial.state in DONE:
                bar.update(1)
            budget.on_trial(result)

        try:
            self.optuna_study.optimize(
                objective, n_trials=1, catch=objective.catch, callbacks=[finished]
            )
        except BaseException:
            result = objective.results.pop(objective.current, None)
            if result is not None:  # interrupted: logged as a failed trial
                budget.on_trial(result)
            raise
        return results[0] if results else None


def _progress_bar(show: bool, total: int, initial: int):
    """A bar of complete trials (every process's), or None."""
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="trials", unit="trial")
