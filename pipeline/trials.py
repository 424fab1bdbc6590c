"""The objective Optuna calls once per trial: suggest a candidate, cross-validate it, report.

A short define-by-run objective: the space is conditional (``l1_ratio`` only for
elasticnet), the data and folds are passed in once (``CVSetup``), each fold's score is
reported with ``trial.report`` so Optuna's pruner can stop a clearly worse trial, and the
per-fold scores are kept as one user attribute. The evaluated ``TrialResult`` (model
included) is left in ``results`` for the study's callback to hand on.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from datetime import datetime

import numpy as np
import optuna
from optuna.trial import TrialState

from pipeline import search
from pipeline.config import Penalty
from pipeline.models import Candidate
from pipeline.search import FIT_ERRORS, CVSetup, SearchSpace, TrialFailed, TrialResult
from pipeline.storage import retry_stale_trial

log = logging.getLogger(__name__)

# The trial's user attribute with its per-fold scores and convergence.
FOLDS = "folds"
STARTED = "started"  # set as the objective starts: Optuna's heartbeat is running by then


def n_nonzero(coef) -> int:
    """Features with a non-zero coefficient (for any class)."""
    return int(np.count_nonzero(np.any(np.atleast_2d(coef) != 0, axis=0)))


def fail_unstarted(study: optuna.Study, grace_s: float) -> None:
    """Fail the trials that have run for ``grace_s`` without reaching their objective: their
    process died between creating the trial and its first heartbeat, so Optuna's stale-trial
    check, which reads heartbeats, never fails them, and the budget would wait forever."""
    now = datetime.now()  # Optuna's trial times are naive local times
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if STARTED in t.user_attrs or t.datetime_start is None:
            continue
        if (now - t.datetime_start).total_seconds() > grace_s:
            try:
                failed = study.tell(t.number, state=TrialState.FAIL)
            except (RuntimeError, ValueError):  # told meanwhile elsewhere
                continue
            with warnings.catch_warnings():  # (the retry callback is marked experimental)
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # Retried once, as a trial whose heartbeat went stale is (linked by its attrs).
                retry_stale_trial()(study, failed)


class Objective:
    """Callable per trial; ``on_start`` runs first, once the trial exists."""

    catch = (*FIT_ERRORS, TrialFailed)

    def __init__(self, setup: CVSetup, space: SearchSpace, *, prune: bool):
        self.setup = setup
        self.space = space
        # Pruning needs fold-by-fold scoring; the Gram path scores all folds at once.
        self.prune = prune and not setup.fast.moments
        self.results: dict[int, TrialResult] = {}
        self.current: int | None = None
        self.reported = 0
        self.on_start: Callable[[], None] = lambda: None

    def __call__(self, trial: optuna.Trial) -> float:
        self.on_start()
        trial.set_user_attr(STARTED, True)
        self.current, self.reported = trial.number, 0
        candidate = self.space.suggest(trial)
        try:
            result = search.evaluate(
                self.setup, candidate, number=trial.number, on_fold=self._on_fold(trial, candidate)
            )
            if not np.isfinite(result.cv_score_mean):
                raise TrialFailed(f"the CV score is {result.cv_score_mean}")
        except optuna.TrialPruned:
            raise
        except BaseException as exc:  # a fit error, an interrupt or a bug: the trial fails
            self._failed(trial, candidate, exc)
            raise
        if self.prune:  # intermediate values are what the pruner reads; each is a write
            self._report(trial, result.cv_scores)
        trial.set_user_attr(
            FOLDS,
            {
                "cv": result.cv_scores,
                "train": result.train_scores,
                "converged": result.converged,
                "n_nonzero": n_nonzero(result.estimator[-1].coef_),
            },
        )
        self.results[trial.number] = result
        return result.cv_score_mean

    def _failed(self, trial: optuna.Trial, candidate: Candidate, exc: BaseException) -> None:
        if isinstance(exc, self.catch):
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            trial.set_user_attr("fail_reason", reason)
        else:
            reason = f"interrupted ({type(exc).__name__})"
        self.results[trial.number] = TrialResult(
            trial.number, candidate, [], 0.0, False, error=reason
        )

    def _report(self, trial: optuna.Trial, scores: list[float]) -> None:
        """Report the folds not reported yet, as Optuna's intermediate values (step = fold)."""
        for step in range(self.reported, len(scores)):
            trial.report(scores[step], step)
        self.reported = len(scores)

    def _on_fold(self, trial: optuna.Trial, candidate: Candidate):
        if not self.prune:
            return None

        def on_fold(scores: list[float]) -> None:
            self._report(trial, scores)
            if trial.should_prune():
                trial.set_user_attr(FOLDS, {"cv": list(scores)})
                self.results[trial.number] = TrialResult(
                    trial.number, candidate, list(scores), 0.0, True, pruned=True
                )
                raise optuna.TrialPruned(f"pruned after {len(scores)} folds")

        return on_fold


class FoldPruner(optuna.pruners.BasePruner):
    """Stops a trial whose every fold so far is clearly worse than the best trial's.

    "Clearly": on each fold scored so far, the trial trails the best trial's score on the
    same fold by more than the best trial's own spread across folds. The eventual best
    would have to lose to the current best on every one of those folds by more than that
    spread; ``make bench`` re-scores pruned trials in full to check it never happened.
    """

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        try:
            best = study.best_trial
        except ValueError:  # no complete trial yet
            return False
        best_folds = best.user_attrs.get(FOLDS, {}).get("cv")
        scores = [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]
        return bool(best_folds) and clearly_worse(scores, best_folds)


def clearly_worse(scores: list[float], best: list[float]) -> bool:
    """Whether ``scores`` trail ``best`` on every fold by more than ``best``'s own spread."""
    margin = max(best) - min(best)
    deficits = [b - s for b, s in zip(best, scores, strict=False)]
    return bool(deficits) and min(deficits) > margin


def candidate_of(params: dict) -> Candidate:
    """The candidate a trial's params describe."""
    return Candidate(Penalty(params["penalty"]), float(params["alpha"]), params.get("l1_ratio"))


def enqueue_guesses(study: optuna.Study, space: SearchSpace, guess_alpha: float) -> None:
    """The tutorial's guesses are trials too, so the result is never worse than a guess."""
    for penalty in (Penalty.l1, Penalty.l2):
        guess = Candidate(penalty, guess_alpha, None)
        if space.contains(guess):
            study.enqueue_trial({"penalty": penalty.value, "alpha": guess_alpha})
        else:
            log.info("the guess %s is outside the search space: a baseline only", guess.label)
