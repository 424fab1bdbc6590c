"""The end of a study: the last trials logged, the best model refitted and scored on the
holdout next to the baselines, the review figures, all of it written on the parent run."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pipeline import (
    evaluate,
    interrupt,
    plots,
    progress,
    publish,
    report,
    running,
    stability,
    stores,
    turns,
)
from pipeline.config import Config, Select
from pipeline.errors import UserError
from pipeline.selection import Pick, picks
from pipeline.split import Split
from pipeline.summary import BestTrial, DataSummary, SpaceSummary, StudySummary
from pipeline.uncertainty import Interval, Predictions

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from pipeline import data, search, tracking
    from pipeline.study import Study

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """Everything a study's run and report need, once the study and parent run are open."""

    cfg: Config
    dataset: data.Dataset
    parts: Split
    setup: search.CVSetup
    space: search.SearchSpace
    study: Study
    tracker: tracking.Tracker
    parent: str
    turn: ExitStack  # holds the study's report lock once taken, until the registry decided


@dataclass(frozen=True)
class Timings:
    search_s: float
    study_s: float
    logging_s_mean: float
    evidence_s: float


@dataclass(frozen=True)
class Evidence:
    """The study's chosen model and what the report shows of it, logged on the parent run."""

    picks: dict[Select, Pick]  # each selection rule's pick
    selected: Select  # the rule whose pick was refitted
    model: Pipeline
    holdout: dict[str, dict[str, float]]  # "best" and each baseline: metric -> value
    intervals: dict[str, dict[str, Interval]]  # the same, with bootstrap intervals
    predictions: dict[str, Predictions]  # the same models' holdout predictions
    coefficients: pd.Series | pd.DataFrame
    stability: stability.Stability
    logged: publish.Published

    @property
    def pick(self) -> Pick:
        return self.picks[self.selected]


def search_and_report(job: Job) -> tuple[StudySummary, dict[str, Predictions]]:
    """Run the study to its budget, then write its result on the parent run; the summary,
    and the holdout predictions of the refitted model and of the baselines."""
    timings, evidence, earlier = run_and_log(job)
    if earlier is not None:
        log.info("study %s was reported by another process meanwhile", job.study.name)
        return replace(earlier, reused=True), {}
    interrupt.check()  # a signal while the last trials were logged stops before the report
    counts = job.study.counts()
    if counts["complete"] == 0:
        raise UserError(
            f"no trial of study {job.study.name} completed ({counts['failed']} failed); "
            "see the fail_reason tag on its trial runs"
        )
    if evidence is None:  # trials were still running elsewhere when the search ended here
        start = time.perf_counter()
        evidence = gather(job)
        timings = replace(timings, evidence_s=time.perf_counter() - start)
    metrics = {
        "best_cv_score": evidence.pick.cv_score,
        "best_trial_number": evidence.pick.trial,
        **_pick_metrics(evidence.picks),
        **{f"n_trials_{k}": counts[k] for k in ("complete", "failed", "pruned")},
        "n_nonzero_coefs": evaluate.n_nonzero(evidence.coefficients),
        "n_features_always_selected": len(evidence.stability.always),
        "n_features_never_selected": len(evidence.stability.never),
        "n_rows_dropped_missing_target": job.dataset.n_rows_dropped,
        "study_time_s": timings.study_s,
        "search_time_s": timings.search_s,
        "evidence_time_s": timings.evidence_s,
        "trial_logging_s_mean": timings.logging_s_mean,
    }
    for name, scores in evidence.intervals.items():
        prefix = "test" if name == "best" else f"baseline_{name}_test"
        for m, v in scores.items():
            metrics.update({f"{prefix}_{m}": v.value, f"{prefix}_{m}_low": v.low})
            metrics[f"{prefix}_{m}_high"] = v.high
    summary = _summary(job, counts, evidence, metrics)
    job.tracker.log_result(
        job.parent, metrics=metrics, summary=summary, description=report.description(summary)
    )
    return summary, evidence.predictions


def gather(job: Job) -> Evidence:
    """Refit the trial the selection rule picks and the baselines, score them on the
    holdout, draw the review figures, and log all of it with the model on the parent run."""
    frame = job.study.trials_frame()
    chosen = picks(frame)
    selected = job.cfg.search.select
    pick = chosen[selected]
    refit = f"report: refitting trial {pick.trial} ({selected}) and the baselines; holdout"
    with progress.phase(f"{refit} scores and {job.cfg.holdout.n_bootstrap} bootstrap resamples"):
        best_model = job.setup.fit(pick.candidate)
        holdout, intervals, predictions = _holdout(job, best_model)
    coefs = evaluate.coefficients(best_model)
    with progress.phase("report: selection stability across the folds"):
        stable = stability.stability(
            job.setup,
            pick.candidate,
            n_bootstrap=job.cfg.search.stability_bootstrap,
            seed=job.cfg.search.random_state,
        )
    with progress.phase("report: review figures"):
        figures = _figures(job, frame, pick.candidate, coefs)
        figures["stability.png"] = stability.stability_plot(
            stable, title=f"Selection stability of {pick.candidate.label} across the CV folds"
        )
    params = {f"best_{k}": v for k, v in pick.candidate.params().items()}
    params["selected"] = selected.value
    for rule, p in chosen.items():
        params.update({f"pick_{rule}_{k}": v for k, v in p.candidate.params().items()})
    interrupt.check()  # a signal during the refits stops before anything is logged
    tables = {"coefficients.csv": coefs, "stability.csv": stable.table}
    logged = publish.evidence(job, pick.candidate, best_model, params, tables, figures)
    return Evidence(
        chosen, selected, best_model, holdout, intervals, predictions, coefs, stable, logged
    )


def _holdout(job: Job, best_model: Pipeline):
    """The holdout metrics of the chosen model and the baselines, with their intervals."""
    guesses = evaluate.baseline_candidates(job.dataset.task, job.cfg.search.guess_alpha)
    baselines = {name: job.setup.fit(candidate) for name, candidate in guesses.items()}
    predictions = evaluate.holdout_predictions(
        {"best": best_model, **baselines}, job.parts, task=job.dataset.task
    )
    holdout = evaluate.scores_of(predictions, task=job.dataset.task)
    sure = job.cfg.holdout
    intervals = evaluate.intervals(
        predictions, holdout, n_resamples=sure.n_bootstrap, level=sure.confidence, seed=sure.seed
    )
    return holdout, intervals, predictions


def _pick_metrics(chosen: dict[Select, Pick]) -> dict[str, float]:
    out = {}
    for rule, p in chosen.items():
        out.update({f"pick_{rule}_trial": p.trial, f"pick_{rule}_cv_score": p.cv_score})
        out.update({f"pick_{rule}_cv_se": p.cv_se, f"pick_{rule}_n_nonzero": p.n_nonzero})
    return out


def run_and_log(job: Job) -> tuple[Timings, Evidence | None, StudySummary | None]:
    """Run the study's trials, each logged as a child run, then take the study's report
    lock (see ``turns``); the summary another process reported meanwhile, if one did.
    Else log, evaluated again, the complete trials that have no child run (run by a process
    that died, or by another Optuna client); where no trial is still running elsewhere, the
    evidence for the best one is gathered while this process logs its last trials."""
    locks = turns.study_locks(job.cfg.search.storage, job.study.name)
    job.tracker.settle_trial_runs(job.parent, older_than_s=job.cfg.search.grace_period)
    start = time.perf_counter()
    evidence, evidence_s, earlier = None, 0.0, None
    with (
        locks.hold(turns.LOGGING, shared=True),
        running.trial_logger(job.cfg, job.tracker, job.parent, job.parts) as logger,
    ):
        running.optimize(job.cfg, job.setup, job.space, job.study, logger)
        searched = time.perf_counter() - start
        last = f"; MLflow logs the last {progress.plural(logger.pending(), 'trial')} meanwhile"
        log.info("search done in %.1f s%s", searched, last if logger.pending() else "")
        interrupt.check()
        first = job.turn.enter_context(locks.hold(turns.REPORT, wait=False))
        earlier = job.tracker.load_summary(job.parent) if first else None
        if first and earlier is None and job.study.n_complete() and not job.study.n_running():
            evidence = gather(job)
            evidence_s = time.perf_counter() - start - searched
    seconds, count = logger.seconds, logger.count
    if not first:  # never waited for while holding the logging lock: see turns
        job.turn.enter_context(locks.hold(turns.REPORT))
        earlier = job.tracker.load_summary(job.parent)
    if earlier is None:
        with locks.hold(turns.LOGGING):  # every live pipeline process has logged its trials
            running.log_unlogged(job.cfg, job.study, job.tracker, job.parent, job.setup, job.parts)
    timings = Timings(searched, time.perf_counter() - start, seconds / max(count, 1), evidence_s)
    return timings, evidence, earlier


def _figures(job: Job, frame: pd.DataFrame, best, coefs) -> dict[str, Any]:
    from pipeline import review

    title = f"Coefficients of the best model: {best.label}"
    figures = {"coefficients.png": plots.coefficient_plot(coefs, title=title)}
    importances = job.study.param_importances()
    figures.update(
        review.figures(job.setup, job.space, frame, importances, best, classes=job.dataset.classes)
    )
    return figures


def _summary(job: Job, counts: dict[str, int], evidence: Evidence, metrics) -> StudySummary:
    cfg, dataset, parts = job.cfg, job.dataset, job.parts
    return StudySummary(
        study=job.study.name,
        fingerprint=job.study.fingerprint,
        parent_run_id=job.parent,
        experiment_name=cfg.tracking.experiment_name,
        experiment_id=job.tracker.experiment_id,
        tracking_uri=stores.mask_url(cfg.tracking.uri),
        ui_url=job.tracker.ui_url(job.parent),
        ui_command=stores.ui_command(cfg.tracking.uri),
        task=dataset.task.value,
        classes=[str(c) for c in dataset.classes],
        scoring=cfg.search.scoring,
        n_splits=cfg.search.n_splits,
        space=SpaceSummary(
            penalties=[p.value for p in job.space.penalties],
            alpha_low=job.space.alpha_low,
            alpha_high=job.space.alpha_high,
            l1_ratio_low=job.space.l1_ratio_low,
            l1_ratio_high=job.space.l1_ratio_high,
        ),
        data=DataSummary(
            name=dataset.name,
            source=dataset.source,
            digest=dataset.digest,
            n_train=len(parts.X_train),
            n_test=len(parts.X_test),
            n_features=parts.X_train.shape[1],
        ),
        trials=counts,
        holdout=evidence.holdout,
        holdout_intervals={
            name: {m: [v.low, v.high] for m, v in scores.items()}
            for name, scores in evidence.intervals.items()
        },
        confidence=cfg.holdout.confidence,
        metrics=metrics,
        best=_trial(evidence.pick),
        best_model_uri=evidence.logged.model_uri,
        registered_model_uri=evidence.logged.registered_uri,
        n_fitted=evidence.logged.n_fitted,
        selected=evidence.selected.value,
        picks={rule.value: _trial(p) for rule, p in evidence.picks.items()},
        always_selected=evidence.stability.always,
        never_selected=evidence.stability.never,
    )


def _trial(p: Pick) -> BestTrial:
    c = p.candidate
    return BestTrial(
        p.trial, c.penalty.value, c.alpha, c.l1_ratio, p.cv_score, p.cv_se, p.n_nonzero
    )
