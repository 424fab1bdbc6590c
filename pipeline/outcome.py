"""The end of a study: the last trials logged, the best model refitted and scored on the
holdout next to the baselines, the review figures, all of it written on the parent run."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pipeline import config, evaluate, interrupt, plots, report, running, stores
from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.split import Split
from pipeline.storage import shared_storage

if TYPE_CHECKING:
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


@dataclass(frozen=True)
class Timings:
    search_s: float
    study_s: float
    logging_s_mean: float


def search_and_report(job: Job) -> dict[str, Any]:
    """Run the study to its budget, then write its result on the parent run."""
    timings = run_and_log(job)
    interrupt.check()  # a signal while the last trials were logged stops before the report
    counts = job.study.counts()
    if counts["complete"] == 0:
        raise UserError(
            f"no trial of study {job.study.name} completed ({counts['failed']} failed); "
            "see the fail_reason tag on its trial runs"
        )
    number, best, cv_score = job.study.best()
    best_model = job.setup.fit(best)
    guesses = evaluate.baseline_candidates(job.dataset.task, job.cfg.search.guess_alpha)
    baselines = {name: job.setup.fit(candidate) for name, candidate in guesses.items()}
    holdout = evaluate.holdout_scores(
        {"best": best_model, **baselines}, job.parts, task=job.dataset.task
    )
    coefs = evaluate.coefficients(best_model)
    metrics = {
        "best_cv_score": cv_score,
        "best_trial_number": number,
        **{f"n_trials_{k}": v for k, v in _counts(counts).items()},
        "n_nonzero_coefs": evaluate.n_nonzero(coefs),
        "n_rows_dropped_missing_target": job.dataset.n_rows_dropped,
        "study_time_s": timings.study_s,
        "search_time_s": timings.search_s,
        "trial_logging_s_mean": timings.logging_s_mean,
    }
    for name, scores in holdout.items():
        prefix = "test" if name == "best" else f"baseline_{name}_test"
        metrics.update({f"{prefix}_{m}": v for m, v in scores.items()})
    summary = _summary(job, counts, holdout, metrics)
    summary["best"] = {"trial": number, **best.params(), "l1_ratio": best.l1_ratio}
    summary["best"]["cv_score"] = cv_score
    summary["best_model_uri"] = job.tracker.log_outcome(
        job.parent,
        params={f"best_{k}": v for k, v in best.params().items()},
        metrics=metrics,
        best_model=best_model,
        example=job.parts.X_train.head(5),
        coefficients=coefs,
        figures=_figures(job, best, coefs),
        config_yaml=config.to_yaml(public_config(job.cfg)),
        summary=summary,
        description=report.description(summary),
        dataset=job.dataset,
        train=(job.parts.X_train, job.parts.y_train),
        holdout=(job.parts.X_test, job.parts.y_test),
    )
    return summary


def _counts(counts: dict[str, int]) -> dict[str, int]:
    return {"complete": counts["complete"], "failed": counts["failed"], "pruned": counts["pruned"]}


def run_and_log(job: Job) -> Timings:
    """Run the study's trials, each logged as a child run; then log, evaluated again, the
    complete trials that have no child run (run by a process that died, or by another
    Optuna client)."""
    from pipeline import search

    job.tracker.settle_trial_runs(job.parent, older_than_s=job.cfg.search.grace_period)
    start = time.perf_counter()
    with running.trial_logger(job.cfg, job.tracker, job.parent, job.parts) as logger:
        running.optimize(job.cfg, job.setup, job.space, job.study, logger)
        searched = time.perf_counter() - start
        if logger.pending():
            log.info("search done; logging the last %d trials to MLflow", logger.pending())
    seconds, count = logger.seconds, logger.count
    missing, failed = unlogged(job.cfg, job.study, job.tracker, job.parent)
    if missing or failed:
        log.info("logging %d trials run or failed elsewhere", len(missing) + len(failed))
        with running.trial_logger(job.cfg, job.tracker, job.parent, job.parts) as logger:
            for number, (candidate, reason) in failed.items():
                logger.submit(search.TrialResult(number, candidate, [], 0.0, False, error=reason))
            for number, candidate in missing.items():
                logger.submit(search.evaluate(job.setup, candidate, number=number))
    return Timings(searched, time.perf_counter() - start, seconds / max(count, 1))


def _figures(job: Job, best, coefs) -> dict[str, Any]:
    from pipeline import review

    title = f"Coefficients of the best model: {best.label}"
    figures = {"coefficients.png": plots.coefficient_plot(coefs, title=title)}
    frame, importances = job.study.trials_frame(), job.study.param_importances()
    figures.update(
        review.figures(job.setup, job.space, frame, importances, best, classes=job.dataset.classes)
    )
    return figures


def _summary(job: Job, counts, holdout, metrics) -> dict[str, Any]:
    cfg, dataset, parts = job.cfg, job.dataset, job.parts
    return {
        "study": job.study.name,
        "fingerprint": job.study.fingerprint,
        "parent_run_id": job.parent,
        "experiment_name": cfg.tracking.experiment_name,
        "experiment_id": job.tracker.experiment_id,
        "tracking_uri": stores.mask_url(cfg.tracking.uri),
        "ui_url": job.tracker.ui_url(job.parent),
        "ui_command": ui_command(cfg.tracking.uri),
        "task": dataset.task.value,
        "classes": [str(c) for c in dataset.classes],
        "scoring": cfg.search.scoring,
        "n_splits": cfg.search.n_splits,
        "space": {**asdict(job.space), "penalties": [p.value for p in job.space.penalties]},
        "data": {
            "name": dataset.name,
            "source": dataset.source,
            "digest": dataset.digest,
            "n_train": len(parts.X_train),
            "n_test": len(parts.X_test),
            "n_features": parts.X_train.shape[1],
        },
        "trials": counts,
        "holdout": holdout,
        "metrics": metrics,
    }


def unlogged(cfg: Config, study: Study, tracker: tracking.Tracker, parent: str):
    """The complete trials with no finished child run, and the failed trials with no child
    run at all, once the other workers had time to log theirs."""
    from pipeline import tracking

    wait = cfg.search.grace_period if shared_storage(cfg.search.storage) else 0
    deadline = time.monotonic() + wait
    while True:
        older = 0.0 if time.monotonic() >= deadline else wait
        logged = tracker.settle_trial_runs(parent, older_than_s=older)
        missing = {n: c for n, c in study.complete_candidates().items() if n not in logged}
        if not missing or older == 0.0:
            break
        interrupt.check()
        time.sleep(1.0)
    runs = {r.data.tags.get(tracking.TRIAL_NUMBER) for r in tracker.trial_runs(parent)}
    failed = {n: f for n, f in study.failed_candidates().items() if str(n) not in runs}
    return missing, failed


def config_digest(cfg: Config) -> str:
    """A digest of what the job trains: data source, split and search settings."""
    values = public_config(cfg)
    for key in ("storage", "fresh", "progress_bar", "heartbeat_interval", "grace_period"):
        values["search"].pop(key)
    payload = {k: values[k] for k in ("data", "split", "search")}
    payload["model_name"] = cfg.registry.model_name
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


def ui_command(uri: str) -> str:
    if uri.startswith(("http://", "https://")):
        return "the tracking server is up"
    default = f"sqlite:///{config.PROJECT_ROOT / 'mlruns' / 'mlflow.db'}"
    return "make ui" if uri == default else f"make ui TRACKING_URI={stores.mask_url(uri)}"


def public_config(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain values, store URLs with any password masked."""
    values = asdict(cfg)
    values["search"]["storage"] = stores.mask_url(cfg.search.storage)
    values["tracking"]["uri"] = stores.mask_url(cfg.tracking.uri)
    values["search"]["penalties"] = [p.value for p in cfg.search.penalties]
    return values
