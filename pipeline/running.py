"""Running a study's trials, each handed to the MLflow trial logger as it finishes."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from pipeline import interrupt
from pipeline.config import Config
from pipeline.split import Split
from pipeline.study import Budget
from pipeline.summary import WorkerSummary

if TYPE_CHECKING:
    from pipeline import search, tracking
    from pipeline.study import Study

log = logging.getLogger(__name__)


def on_trial_logger(logger: tracking.TrialLogger, *, show_bar: bool):
    def on_trial(result: search.TrialResult) -> None:
        retry = f" (retry of trial {result.retry_of})" if result.retry_of is not None else ""
        if result.error is not None:
            log.warning(
                "trial %d%s  %s  failed: %s",
                result.number,
                retry,
                result.candidate.label,
                result.error,
            )
        elif result.pruned:
            if not show_bar:
                log.info(
                    "trial %d%s  %s  pruned after %d folds",
                    result.number,
                    retry,
                    result.candidate.label,
                    len(result.cv_scores),
                )
        elif not show_bar:  # a log line per trial instead, e.g. in a cron job's log
            log.info(
                "trial %d%s  %s  %.6g",
                result.number,
                retry,
                result.candidate.label,
                result.cv_score_mean,
            )
        logger.submit(result)

    return on_trial


def work(
    cfg: Config,
    parts: Split,
    setup: search.CVSetup,
    space: search.SearchSpace,
    study: Study,
    parent: str,
    tracker: tracking.Tracker,
) -> WorkerSummary:
    """``job=worker``: run trials of the shared study until its budget is spent; no report.

    The parent run stays open: ``make tune`` (or a later one) reports, registers and closes it.
    """
    from pipeline import turns

    tracker.settle_trial_runs(parent, older_than_s=cfg.search.grace_period)
    locks = turns.study_locks(cfg.search.storage, study.name)
    with (
        locks.hold(turns.LOGGING, shared=True),
        trial_logger(cfg, tracker, parent, parts) as logger,
    ):
        done = optimize(cfg, setup, space, study, logger)
    return worker_summary(cfg, study, parent, done)


def trial_logger(
    cfg: Config, tracker: tracking.Tracker, parent: str, parts: Split
) -> tracking.TrialLogger:
    return tracker.trial_logger(
        parent,
        example_X=parts.X_train.head(5),
        example_y=parts.y_train.head(5),
        log_models=cfg.tracking.log_trial_models,
    )


def optimize(
    cfg: Config,
    setup: search.CVSetup,
    space: search.SearchSpace,
    study: Study,
    logger: tracking.TrialLogger,
) -> int:
    """Run the study's trials to its budget, each logged by ``logger``; return those run here."""
    show_bar = cfg.search.progress_bar and sys.stderr.isatty()
    budget = Budget(
        n_trials=cfg.search.n_trials,
        timeout=cfg.search.timeout,
        on_trial=on_trial_logger(logger, show_bar=show_bar),
        show_progress_bar=show_bar,
        prune=cfg.search.prune,
        grace_s=cfg.search.grace_period,
    )
    return study.optimize(setup, space, budget)


def worker_summary(cfg: Config, study: Study, parent: str, done: int) -> WorkerSummary:
    return WorkerSummary(
        study=study.name,
        parent_run_id=parent,
        n_trials=cfg.search.n_trials,
        trials_here=done,
        trials=study.counts(),
        finished=study.finished,
    )


def log_unlogged(
    cfg: Config,
    study: Study,
    tracker: tracking.Tracker,
    parent: str,
    setup: search.CVSetup,
    parts: Split,
) -> None:
    """Log the complete trials with no finished child run, evaluated again, and the failed
    trials with no child run at all. Call it holding the study's logging lock exclusively
    (``turns``): no live pipeline process is logging a trial then, so a trial without a
    child run was run by a dead process or by another Optuna client. A child run RUNNING
    for more than ``grace_period`` was left by a dead process (KILLED, logged again); a
    younger one may belong to the logging worker of a process just interrupted (left be)."""
    from pipeline import search, tracking

    logged = tracker.settle_trial_runs(parent, older_than_s=cfg.search.grace_period)
    runs = [
        (r.data.tags.get(tracking.TRIAL_NUMBER), r.info.status) for r in tracker.trial_runs(parent)
    ]
    # A young RUNNING run: the logging worker of an interrupted process may still finish it.
    logged |= {int(n) for n, status in runs if n and status == "RUNNING"}
    missing = {n: c for n, c in study.complete_candidates().items() if n not in logged}
    numbers = {n for n, _ in runs}
    failed = {n: f for n, f in study.failed_candidates().items() if str(n) not in numbers}
    if not missing and not failed:
        return
    log.info("logging %d trials run or failed elsewhere", len(missing) + len(failed))
    with trial_logger(cfg, tracker, parent, parts) as logger:
        for number, (candidate, reason) in failed.items():
            logger.submit(search.TrialResult(number, candidate, [], 0.0, False, error=reason))
        for number, candidate in missing.items():
            interrupt.check()
            logger.submit(search.evaluate(setup, candidate, number=number))
