"""The search space and what one trial computes: k-fold CV scores and a refitted model.

Optuna's study lives in ``pipeline.study`` (and its objective in ``pipeline.trials``); this
module knows nothing of stores: a candidate goes in, a plain ``TrialResult`` comes out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import optuna
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from pipeline import grouping, rowkeys
from pipeline.config import Penalty, SearchConfig, Select, Task
from pipeline.errors import UserError
from pipeline.folds import FastCV, OnFold
from pipeline.models import Candidate

log = logging.getLogger(__name__)

# Seconds each trial sleeps before its folds: lets a test kill a worker in mid-trial now
# that a trial takes milliseconds. Never set in production.
PAUSE_IN_TRIAL = "PIPELINE_TEST_PAUSE_IN_TRIAL"
FIT_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError)


@dataclass(frozen=True)
class SearchSpace:
    """Which penalties, and the ranges alpha and l1_ratio are drawn from (alpha on a log scale)."""

    penalties: tuple[Penalty, ...]
    alpha_low: float
    alpha_high: float
    l1_ratio_low: float
    l1_ratio_high: float

    @classmethod
    def from_config(cls, cfg: SearchConfig) -> SearchSpace:
        return cls(
            penalties=tuple(Penalty(p) for p in cfg.penalties),
            alpha_low=cfg.alpha_low,
            alpha_high=cfg.alpha_high,
            l1_ratio_low=cfg.l1_ratio_low,
            l1_ratio_high=cfg.l1_ratio_high,
        )

    def suggest(self, trial: optuna.Trial) -> Candidate:
        """Draw one candidate; l1_ratio exists only for elasticnet."""
        penalty = Penalty(trial.suggest_categorical("penalty", [p.value for p in self.penalties]))
        alpha = trial.suggest_float("alpha", self.alpha_low, self.alpha_high, log=True)
        l1_ratio = None
        if penalty == Penalty.elasticnet:
            l1_ratio = trial.suggest_float("l1_ratio", self.l1_ratio_low, self.l1_ratio_high)
        return Candidate(penalty, alpha, l1_ratio)

    def contains(self, candidate: Candidate) -> bool:
        return (
            candidate.penalty in self.penalties
            and self.alpha_low <= candidate.alpha <= self.alpha_high
        )


@dataclass(frozen=True)
class CVSetup:
    """What every trial needs: training data, the folds (built once) and the scorer."""

    X: pd.DataFrame
    y: pd.Series
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]
    scoring: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    max_iter: int
    tol: float
    task: Task = Task.regression
    impute: bool = False
    fast: FastCV = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fast = FastCV(
            self.X,
            self.y,
            self.folds,
            self.scoring,
            self.task,
            self.numeric,
            self.categorical,
            self.impute,
            self.max_iter,
            self.tol,
        )
        object.__setattr__(self, "fast", fast)

    @classmethod
    def build(
        cls,
        X: pd.DataFrame,
        y: pd.Series,
        *,
        n_splits: int,
        random_state: int,
        scoring: str,
        numeric: Sequence[str],
        categorical: Sequence[str],
        max_iter: int,
        tol: float,
        task: Task = Task.regression,
        impute: bool = False,
        groups: pd.Series | None = None,
        time_gap: int | None = None,
    ) -> CVSetup:
        """Build the folds once: stratified by class for classification; with ``groups``,
        no group on both sides of a fold (``pipeline.grouping``); with ``time_gap``, rows in
        time order chained forward (``pipeline.rowkeys``)."""
        classify = task == Task.classification
        if time_gap is not None:
            folds = rowkeys.time_folds(y, n_splits=n_splits, gap=time_gap, classify=classify)
        elif groups is not None:
            folds = grouping.folds(
                y, groups, n_splits=n_splits, random_state=random_state, classify=classify
            )
        else:
            kind = StratifiedKFold if classify else KFold
            splitter = kind(n_splits=n_splits, shuffle=True, random_state=random_state)
            folds = tuple(splitter.split(X, y))
        return cls(
            X, y, folds, scoring, tuple(numeric), tuple(categorical), max_iter, tol, task, impute
        )

    def estimator(self, candidate: Candidate | None) -> Pipeline:
        """An unfitted pipeline for ``candidate`` (``None``: unpenalized least squares)."""
        return self.fast.estimator(candidate)

    def fit(self, candidate: Candidate | None) -> Pipeline:
        """``candidate`` fitted on all training rows (convergence warnings silenced): the
        fast path's refit, warm-started from the fits before it; the unpenalized baseline
        by scikit-learn."""
        if candidate is not None:
            return self.fast.refit(candidate)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return self.estimator(candidate).fit(self.X, self.y)


@dataclass
class TrialResult:
    """One evaluated candidate: its CV scores and its model refitted on all training rows."""

    number: int
    candidate: Candidate
    cv_scores: list[float]
    fit_time_s: float
    converged: bool
    estimator: Pipeline | None = None
    error: str | None = None
    train_scores: list[float] = field(default_factory=list)
    pruned: bool = False
    retry_of: int | None = None  # the number of the failed trial this one repeats
    started_ms: int | None = None  # when its evaluation started (Unix time, milliseconds)

    @property
    def cv_score_mean(self) -> float:
        return float(np.mean(self.cv_scores)) if self.cv_scores else float("nan")

    @property
    def cv_score_std(self) -> float:
        return float(np.std(self.cv_scores)) if self.cv_scores else float("nan")

    @property
    def ok(self) -> bool:
        return self.error is None and not self.pruned


def _converged(estimator: Pipeline, max_iter: int) -> bool:
    n_iter = getattr(estimator[-1], "n_iter_", None)
    return n_iter is None or bool(np.all(np.asarray(n_iter) < max_iter))


def evaluate(
    setup: CVSetup, candidate: Candidate, *, number: int = -1, on_fold: OnFold | None = None
) -> TrialResult:
    """Cross-validate ``candidate`` on the prepared folds, then refit it on all training rows.

    The scores are those of ``cross_val_score`` on the same folds, computed by the fast
    path of ``pipeline.folds``. Convergence is read from each fit's ``n_iter_``, not from the
    warning, which is silenced so a search over small alphas does not flood the terminal.
    ``on_fold(scores_so_far)`` is called after each fold but the last, and may stop it.
    """
    started_ms = int(time.time() * 1000)
    start = time.perf_counter()
    if pause := os.environ.get(PAUSE_IN_TRIAL):  # fault injection for the kill -9 tests
        time.sleep(float(pause))
    scores = setup.fast.scores(candidate, on_fold=on_fold)
    final, refit_converged = setup.fast.refit_with_status(candidate)
    converged = scores.converged and refit_converged and _converged(final, setup.max_iter)
    elapsed = time.perf_counter() - start
    return TrialResult(
        number,
        candidate,
        scores.cv,
        elapsed,
        converged,
        final,
        None,
        scores.train,
        started_ms=started_ms,
    )


def check_scoring(setup: CVSetup, space: SearchSpace) -> None:
    """Fail at once, with one line, if ``setup.scoring`` cannot score this kind of model.

    One fit on the first fold: cheaper than a study of trials that all fail.
    """
    alpha = float(np.sqrt(space.alpha_low * space.alpha_high))
    ratio = (space.l1_ratio_low + space.l1_ratio_high) / 2
    penalty = space.penalties[0]
    candidate = Candidate(penalty, alpha, ratio if penalty == Penalty.elasticnet else None)
    try:
        model, X_test, y_test = setup.fast.first_fold_fit(candidate)
        get_scorer(setup.scoring)(model, X_test, y_test)
    except Exception as exc:  # any failure here is the scorer's or the data's, not a bug
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"The 'search.scoring' parameter {setup.scoring!r} cannot score a "
            f"{setup.task.value} model here: {first}"
        ) from None


def out_of_fold(setup: CVSetup, candidate: Candidate) -> np.ndarray:
    """Each training row's prediction from the fold model that did not see it.

    Class probabilities (columns in sorted class order) for classification, values for
    regression: what the diagnostics plots show, without touching the holdout. The folds'
    own fits give them (``tests/test_cv.py`` holds them to ``cross_val_predict``).
    """
    return setup.fast.out_of_fold(candidate)


class TrialFailed(Exception):
    """A candidate that could not be fitted or scored; its trial is marked failed."""


def fingerprint(
    *,
    data_digest: str,
    split: dict,
    cfg: SearchConfig,
    task: Task = Task.regression,
    impute: bool = False,
) -> str:
    """Identify a study by its data and every setting that changes what a trial computes."""
    settings = {
        "data": data_digest,
        "task": task.value,
        "impute": impute,
        "split": split,
        "space": asdict(SearchSpace.from_config(cfg)),
        "guess_alpha": cfg.guess_alpha,
        "n_splits": cfg.n_splits,
        "scoring": cfg.scoring,
        "random_state": cfg.random_state,
        "max_iter": cfg.max_iter,
        "tol": cfg.tol,
    }
    # Report settings, absent at their defaults: earlier studies keep their ids.
    if cfg.select != Select.best:
        settings["select"] = cfg.select.value
    if cfg.stability_bootstrap:
        settings["stability_bootstrap"] = cfg.stability_bootstrap
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
