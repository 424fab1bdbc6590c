"""The tuning job: data -> validate -> split -> search -> evaluate -> track. Orchestration only."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

from pipeline import config, data, evaluate, interrupt, lock, plots, report, validate
from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.logger_process import LoggerProcess
from pipeline.split import Split, holdout

if TYPE_CHECKING:
    from pipeline import search, tracking

log = logging.getLogger(__name__)


def run(cfg: Config) -> dict[str, Any]:
    """Run (or resume) the study ``cfg`` describes; return its summary."""
    cfg = config.validate(cfg)
    # Forked now, before the data is loaded: see pipeline.logger_process.
    with LoggerProcess() as process:
        return _load_and_run(cfg, process)


def _load_and_run(cfg: Config, process: LoggerProcess) -> dict[str, Any]:
    dataset = data.load(cfg.data)
    dataset = validate.check(
        dataset,
        data=cfg.data,
        n_splits=cfg.search.n_splits,
        test_size=cfg.split.test_size,
        shuffle=cfg.split.shuffle,
    )
    config.check_for_task(cfg, dataset.task)
    scoring = cfg.search.scoring or config.default_scoring(dataset.task, len(dataset.classes))
    cfg = replace(cfg, search=replace(cfg.search, scoring=scoring))
    parts = holdout(dataset, **asdict(cfg.split))
    store = Path(cfg.store_dir)
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"store_dir: cannot create {store}: {exc.strerror}") from None
    if not os.access(store, os.W_OK):
        raise UserError(f"store_dir: {store} is not writable")
    if cfg.job == config.Job.retrain:
        with lock.exclusive(Path(cfg.store_dir) / "retrain.lock"):
            return _run(cfg, dataset, parts, process)
    return _run(cfg, dataset, parts, process)


def _run(
    cfg: Config, dataset: data.Dataset, parts: Split, process: LoggerProcess
) -> dict[str, Any]:
    # Optuna and MLflow are imported only now, so a user error is reported at once, not after
    # seconds of imports.
    from pipeline import registry, search, tracking

    impute = cfg.data.missing == config.Missing.impute
    numeric, categorical = data.feature_kinds(parts.X_train)
    setup = search.CVSetup.build(
        parts.X_train,
        parts.y_train,
        n_splits=cfg.search.n_splits,
        random_state=cfg.search.random_state,
        scoring=cfg.search.scoring,
        numeric=numeric,
        categorical=categorical,
        max_iter=cfg.search.max_iter,
        tol=cfg.search.tol,
        task=dataset.task,
        impute=impute,
    )
    space = search.SearchSpace.from_config(cfg.search)
    search.check_scoring(setup, space)
    log.info(
        "%s: %d rows, %d features, %s%s; scoring %s",
        dataset.name,
        len(dataset.X),
        dataset.X.shape[1],
        dataset.task.value,
        f" of {len(dataset.classes)} classes" if dataset.classes else "",
        cfg.search.scoring,
    )
    interrupt.check()
    fingerprint = search.fingerprint(
        data_digest=dataset.digest,
        split=asdict(cfg.split),
        cfg=cfg.search,
        task=dataset.task,
        impute=impute,
    )

    # Everything above only reads; from here on the stores are written. One process at a time
    # creates the store schemas, the experiment, the study and its parent run, so workers that
    # start together on empty stores share one of each.
    with search.creation_lock(cfg.search.storage):
        tracker = tracking.Tracker.from_config(cfg.tracking)
        digests = {"data_digest": dataset.digest, "config_digest": _config_digest(cfg)}
        name = config.model_name(cfg, dataset.name)
        if cfg.job == config.Job.retrain and cfg.registry.enabled:
            champion = tracker.alias(name, registry.CHAMPION)
            same = champion is not None and all(
                champion.tags.get(k) == v for k, v in digests.items()
            )
            if same and not cfg.registry.force:
                reason = f"champion {name} v{champion.version} was trained on this data and config"
                log.info("%s; nothing to do (registry.force=true retrains)", reason)
                return {"skipped": reason}
            if cfg.registry.force:
                cfg = replace(cfg, search=replace(cfg.search, fresh=True))
        opened = _open_study(cfg, dataset, space, fingerprint, tracker)
    if isinstance(opened, dict):  # a finished study: its summary goes through the gate again
        summary = opened
        if cfg.job == config.Job.worker:
            return summary
    elif cfg.job == config.Job.worker:
        return _work(cfg, parts, setup, space, *opened, tracker, process)
    else:
        summary = _study(cfg, dataset, parts, setup, space, *opened, tracker, process)
    if not cfg.registry.enabled:
        return summary
    interrupt.check()  # a signal during the search stops here: no alias moves
    metric = cfg.registry.metric or config.default_gate_metric(dataset.task, len(dataset.classes))
    holdout_metrics = {f"test_{k}": v for k, v in summary["holdout"]["best"].items()}
    decision = registry.promote(
        tracker,
        name=name,
        metric=metric,
        min_improvement=cfg.registry.min_improvement,
        summary=summary,
        version_tags={
            **digests,
            **tracking.git_tags(config.PROJECT_ROOT),
            "cv_score": summary["best"]["cv_score"],
            **holdout_metrics,
            "parent_run_id": summary["parent_run_id"],
            "study": summary["study"],
        },
        parts=parts,
        task=dataset.task,
        force=cfg.registry.force,
    )
    scores = {f"registry_challenger_{metric}": decision.challenger_score}
    if decision.champion_score is not None:
        scores[f"registry_champion_{metric}"] = decision.champion_score
    tracker.log_decision(
        summary["parent_run_id"],
        tags={
            "promotion": decision.status,
            "promotion_reason": decision.reason,
            "registry.model": f"{name}/{decision.version}",
        },
        metrics=scores,
    )
    log.info("registry: %s v%s %s: %s", name, decision.version, decision.status, decision.reason)
    return {**summary, "promotion": {"model": name, **asdict(decision)}}


def _open_study(
    cfg: Config,
    dataset: data.Dataset,
    space: search.SearchSpace,
    fingerprint: str,
    tracker: tracking.Tracker,
) -> tuple[search.Study, str] | dict[str, Any]:
    """The study and its parent run (both created if new), or the summary of a finished one."""
    from pipeline import search, tracking

    worker = cfg.job == config.Job.worker
    study = search.Study.open(
        storage=cfg.search.storage,
        study_prefix=dataset.name,
        fingerprint=fingerprint,
        # Workers draw their own random candidates; one seed would give them all the same.
        seed=None if worker else cfg.search.random_state,
        space=space,
        guess_alpha=cfg.search.guess_alpha,
        fresh=cfg.search.fresh,
        heartbeat_interval=cfg.search.heartbeat_interval,
        grace_period=cfg.search.grace_period,
    )
    if study.finished and study.parent_run_id:
        if worker:
            log.info("study %s is already finished; nothing to do", study.name)
            return _worker_summary(cfg, study, study.parent_run_id, 0)
        summary = tracker.load_summary(study.parent_run_id)
        if summary is not None:
            done = study.n_complete()
            if cfg.search.n_trials > done:
                log.warning(
                    "study %s finished with %d complete trials; for search.n_trials=%d run a "
                    "new study with search.fresh=true",
                    study.name,
                    done,
                    cfg.search.n_trials,
                )
            else:
                log.info(
                    "study %s is already finished; search.fresh=true starts a new one", study.name
                )
            return {**summary, "reused": True}
    if study.resumed:
        verb = "joining" if worker else "resuming"
        log.info("%s study %s (%d trials complete)", verb, study.name, study.n_complete())
    parent = tracker.open_parent(
        study.parent_run_id,
        run_name=study.name,
        tags={
            "pipeline.study_name": study.name,
            "pipeline.fingerprint": fingerprint,
            "pipeline.data_digest": dataset.digest,
            **tracking.git_tags(config.PROJECT_ROOT),
        },
        params=dict(tracking.flatten("", _public_config(cfg))),
    )
    if parent != study.parent_run_id:
        study.parent_run_id = parent
    return study, parent


def _on_trial(logger: tracking.TrialLogger, *, show_bar: bool):
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


def _work(
    cfg: Config,
    parts: Split,
    setup: search.CVSetup,
    space: search.SearchSpace,
    study: search.Study,
    parent: str,
    tracker: tracking.Tracker,
    process: LoggerProcess,
) -> dict[str, Any]:
    """``job=worker``: run trials of the shared study until its budget is spent; no report.

    The parent run stays open: ``make tune`` (or a later one) reports, registers and closes it.
    """
    tracker.settle_trial_runs(parent, older_than_s=cfg.search.grace_period)
    with _trial_logger(cfg, tracker, parent, parts, process) as logger:
        done = _optimize(cfg, setup, space, study, logger)
    return _worker_summary(cfg, study, parent, done)


def _trial_logger(
    cfg: Config, tracker: tracking.Tracker, parent: str, parts: Split, process: LoggerProcess
) -> tracking.TrialLogger:
    return tracker.trial_logger(
        parent,
        example_X=parts.X_train.head(5),
        example_y=parts.y_train.head(5),
        log_models=cfg.tracking.log_trial_models,
        process=process,
    )


def _optimize(
    cfg: Config,
    setup: search.CVSetup,
    space: search.SearchSpace,
    study: search.Study,
    logger: tracking.TrialLogger,
) -> int:
    """Run the study's trials to its budget, each logged by ``logger``; return those run here."""
    show_bar = cfg.search.progress_bar and sys.stderr.isatty()
    return study.optimize(
        setup,
        space,
        n_trials=cfg.search.n_trials,
        timeout=cfg.search.timeout,
        show_progress_bar=show_bar,
        on_trial=_on_trial(logger, show_bar=show_bar),
        prune=cfg.search.prune,
    )


def _worker_summary(cfg: Config, study: search.Study, parent: str, done: int) -> dict[str, Any]:
    return {
        "worker": True,
        "study": study.name,
        "parent_run_id": parent,
        "n_trials": cfg.search.n_trials,
        "trials_here": done,
        "trials": study.counts(),
        "finished": study.finished,
    }


def _study(
    cfg: Config,
    dataset: data.Dataset,
    parts: Split,
    setup: search.CVSetup,
    space: search.SearchSpace,
    study: search.Study,
    parent: str,
    tracker: tracking.Tracker,
    process: LoggerProcess,
) -> dict[str, Any]:
    """Run or resume the study to its budget, then report it on the parent run."""
    try:
        summary = _search_and_report(
            cfg, dataset, parts, setup, space, study, tracker, parent, process
        )
    except KeyboardInterrupt:
        tracker.close_parent(parent, "KILLED")
        raise
    except BaseException:
        tracker.close_parent(parent, "FAILED")
        raise
    study.mark_finished()
    tracker.close_parent(parent, "FINISHED")
    return summary


def _search_and_report(
    cfg: Config,
    dataset: data.Dataset,
    parts: Split,
    setup: search.CVSetup,
    space: search.SearchSpace,
    study: search.Study,
    tracker: tracking.Tracker,
    parent: str,
    process: LoggerProcess,
) -> dict[str, Any]:
    from pipeline import search

    tracker.settle_trial_runs(parent, older_than_s=cfg.search.grace_period)

    start = time.perf_counter()
    with _trial_logger(cfg, tracker, parent, parts, process) as logger:
        _optimize(cfg, setup, space, study, logger)
        searched = time.perf_counter() - start
        if logger.pending():
            log.info("search done; logging the last %d trials to MLflow", logger.pending())
    # Trials that finished in a process which died before logging them (or is logging them
    # now: workers get a grace period) are logged here, evaluated again.
    missing = _unlogged(cfg, study, tracker, parent)
    if missing:
        with _trial_logger(cfg, tracker, parent, parts, process) as logger:
            for number, candidate in missing.items():
                logger.submit(search.evaluate(setup, candidate, number=number))
    study_time = time.perf_counter() - start
    interrupt.check()  # a signal while the last trials were logged stops before the report
    counts = study.counts()
    if counts["complete"] == 0:
        raise UserError(
            f"no trial of study {study.name} completed ({counts['failed']} failed); "
            "see the fail_reason tag on its trial runs"
        )
    number, best, cv_score = study.best()
    best_model = setup.fit(best)
    guesses = evaluate.baseline_candidates(dataset.task, cfg.search.guess_alpha)
    baselines = {name: setup.fit(candidate) for name, candidate in guesses.items()}
    holdout_scores = evaluate.holdout_scores(
        {"best": best_model, **baselines}, parts, task=dataset.task
    )
    coefs = evaluate.coefficients(best_model)
    figures = {
        "coefficients.png": plots.coefficient_plot(
            coefs, title=f"Coefficients of the best model: {best.label}"
        )
    }
    from pipeline import review

    figures.update(
        review.figures(
            setup,
            space,
            study.trials_frame(),
            study.param_importances(),
            best,
            classes=dataset.classes,
        )
    )

    metrics = {
        "best_cv_score": cv_score,
        "best_trial_number": number,
        "n_trials_complete": counts["complete"],
        "n_trials_failed": counts["failed"],
        "n_trials_pruned": counts["pruned"],
        "n_nonzero_coefs": evaluate.n_nonzero(coefs),
        "n_rows_dropped_missing_target": dataset.n_rows_dropped,
        "study_time_s": study_time,
        "search_time_s": searched,
        "trial_logging_s_mean": logger.seconds / max(logger.count, 1),
    }
    for name, scores in holdout_scores.items():
        prefix = "test" if name == "best" else f"baseline_{name}_test"
        metrics.update({f"{prefix}_{m}": v for m, v in scores.items()})
    summary = {
        "study": study.name,
        "fingerprint": study.fingerprint,
        "parent_run_id": parent,
        "experiment_name": cfg.tracking.experiment_name,
        "experiment_id": tracker.experiment_id,
        "tracking_uri": config.mask_url(cfg.tracking.uri),
        "ui_url": tracker.ui_url(parent),
        "ui_command": _ui_command(cfg.tracking.uri),
        "task": dataset.task.value,
        "classes": [str(c) for c in dataset.classes],
        "scoring": cfg.search.scoring,
        "n_splits": cfg.search.n_splits,
        "space": {**asdict(space), "penalties": [p.value for p in space.penalties]},
        "data": {
            "name": dataset.name,
            "source": dataset.source,
            "digest": dataset.digest,
            "n_train": len(parts.X_train),
            "n_test": len(parts.X_test),
            "n_features": parts.X_train.shape[1],
        },
        "trials": counts,
        "best": {"trial": number, **best.params(), "l1_ratio": best.l1_ratio, "cv_score": cv_score},
        "holdout": holdout_scores,
        "metrics": metrics,
    }
    summary["best_model_uri"] = tracker.log_outcome(
        parent,
        params={f"best_{k}": v for k, v in best.params().items()},
        metrics=metrics,
        best_model=best_model,
        example=parts.X_train.head(5),
        coefficients=coefs,
        figures=figures,
        config_yaml=OmegaConf.to_yaml(OmegaConf.create(_public_config(cfg))),
        summary=summary,
        description=report.description(summary),
        dataset=dataset,
    )
    return summary


def _unlogged(
    cfg: Config, study: search.Study, tracker: tracking.Tracker, parent: str
) -> dict[int, Any]:
    """Complete trials with no finished child run, after the other workers had time to log."""
    from pipeline import search

    wait = cfg.search.grace_period if search.shared_storage(cfg.search.storage) else 0
    deadline = time.monotonic() + wait
    while True:
        older = 0.0 if time.monotonic() >= deadline else wait
        logged = tracker.settle_trial_runs(parent, older_than_s=older)
        missing = {n: c for n, c in study.complete_candidates().items() if n not in logged}
        if not missing or older == 0.0:
            return missing
        interrupt.check()
        time.sleep(1.0)


def _config_digest(cfg: Config) -> str:
    """A digest of what the job trains: data source, split and search settings."""
    values = _public_config(cfg)
    for key in ("storage", "fresh", "progress_bar", "heartbeat_interval", "grace_period"):
        values["search"].pop(key)
    payload = {k: values[k] for k in ("data", "split", "search")}
    payload["model_name"] = cfg.registry.model_name
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


def _ui_command(uri: str) -> str:
    if uri.startswith(("http://", "https://")):
        return "the tracking server is up"
    default = f"sqlite:///{config.PROJECT_ROOT / 'mlruns' / 'mlflow.db'}"
    return "make ui" if uri == default else f"make ui TRACKING_URI={config.mask_url(uri)}"


def _public_config(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain values, store URLs with any password masked."""
    values = asdict(cfg)
    values["search"]["storage"] = config.mask_url(cfg.search.storage)
    values["tracking"]["uri"] = config.mask_url(cfg.tracking.uri)
    values["search"]["penalties"] = [p.value for p in cfg.search.penalties]
    return values
