"""The tuning job: data -> validate -> split -> search -> evaluate -> track. Orchestration only."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import config, constraints, data, grouping, interrupt, lock, probe, stores, validate
from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.split import Split, holdout
from pipeline.summary import JobResult, Skipped, StudySummary, WorkerSummary

if TYPE_CHECKING:
    from pipeline import search, tracking
    from pipeline.study import Study

log = logging.getLogger(__name__)


def run(cfg: Config) -> JobResult:
    """Run (or resume) the study ``cfg`` describes; return its summary."""
    cfg = constraints.validate(cfg)
    dataset = data.load(cfg.data)
    dataset = validate.check(
        dataset,
        data=cfg.data,
        n_splits=cfg.search.n_splits,
        test_size=cfg.split.test_size,
        shuffle=cfg.split.shuffle,
    )
    constraints.check_for_task(cfg, dataset.task)
    grouping.check(dataset, n_splits=cfg.search.n_splits, test_size=cfg.split.test_size)
    scoring = cfg.search.scoring or config.default_scoring(dataset.task, len(dataset.classes))
    cfg = replace(cfg, search=replace(cfg.search, scoring=scoring))
    parts = holdout(dataset, **asdict(cfg.split))
    _check_store(Path(cfg.store_dir))
    if cfg.job == config.Job.retrain:
        with lock.exclusive(Path(cfg.store_dir) / "retrain.lock"):
            return _run(cfg, dataset, parts)
    return _run(cfg, dataset, parts)


def _check_stores(cfg: Config) -> None:
    """Each store answers within ``tracking.connect_timeout`` and can be written."""
    timeout = cfg.tracking.connect_timeout
    for key, url in (("tracking.uri", cfg.tracking.uri), ("search.storage", cfg.search.storage)):
        probe.reachable(key, url, timeout)
        probe.writable(key, url)
    probe.writable("tracking.artifact_location", cfg.tracking.artifact_location)


def _check_store(store: Path) -> None:
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"store_dir: cannot create {store}: {exc.strerror}") from None
    if not os.access(store, os.W_OK):
        raise UserError(f"store_dir: {store} is not writable")


def _run(cfg: Config, dataset: data.Dataset, parts: Split) -> JobResult:
    from pipeline import log_pool, search

    setup = _setup(cfg, dataset, parts)
    space = search.SearchSpace.from_config(cfg.search)
    search.check_scoring(setup, space)
    _describe(cfg, dataset)
    interrupt.check()
    if cfg.job != config.Job.retrain:  # (a retraining job may find nothing to do)
        # The logging workers import MLflow on the other core while this process does.
        log_pool.start()
    # Optuna and MLflow are imported only now, so a user error is reported at once, not after
    # seconds of imports.
    from pipeline import outcome, running, schema, storage, tracking

    fingerprint = _fingerprint(cfg, dataset)
    _check_stores(cfg)
    # Everything above only reads; from here on the stores are written. One process at a time
    # creates the store schemas, the experiment, the study and its parent run, so workers that
    # start together on empty stores share one of each.
    with storage.creation_lock(cfg.search.storage):
        tracker = tracking.Tracker.from_config(cfg.tracking)
        digests = {"data_digest": dataset.digest, "config_digest": stores.config_digest(cfg)}
        skipped = _unchanged_champion(cfg, tracker, dataset, digests)
        if skipped is not None:
            return Skipped(skipped)
        digests |= schema.at_retraining(cfg, tracker, dataset)  # a version tag, if accepted
        log_pool.start()
        if cfg.job == config.Job.retrain and cfg.registry.force:
            cfg = replace(cfg, search=replace(cfg.search, fresh=True))
        opened = _open_study(cfg, dataset, space, fingerprint, tracker)
    with contextlib.ExitStack() as turn:  # the study's report lock, once taken (see turns)
        predictions = None  # of a finished study: computed again by the gate
        if isinstance(opened, StudySummary | WorkerSummary):  # a finished study
            summary = _once_undecided(cfg, opened, tracker, turn)
        elif cfg.job == config.Job.worker:
            return running.work(cfg, parts, setup, space, *opened, tracker)
        else:
            study, parent = opened
            job = outcome.Job(cfg, dataset, parts, setup, space, study, tracker, parent, turn)
            summary, predictions = _study(job)
        if isinstance(summary, WorkerSummary) or summary.promotion is not None:
            return _reported_again(summary, tracker)  # else the gate decides now
        if not cfg.registry.enabled:
            return summary
        from pipeline import decide

        gate = {"dataset": dataset, "parts": parts, "setup": setup, "digests": digests}
        return decide.promote(cfg, tracker, summary, predictions=predictions, **gate)


def _once_undecided(cfg: Config, summary, tracker, turn: contextlib.ExitStack):
    """A finished study's summary, read again under the study's report lock when it has no
    decision yet: the process that reported it may be deciding right now."""
    if isinstance(summary, WorkerSummary) or summary.promotion or not cfg.registry.enabled:
        return summary
    from pipeline import turns

    turn.enter_context(turns.study_locks(cfg.search.storage, summary.study).hold(turns.REPORT))
    return replace(tracker.load_summary(summary.parent_run_id) or summary, reused=True)


def _reported_again(summary: StudySummary | WorkerSummary, tracker) -> JobResult:
    """A finished study's summary; its registry decision, if made, is history, reported
    with where the decided version stands now (rolled back, replaced)."""
    made = getattr(summary, "promotion", None)
    if made is None:
        return summary
    from pipeline import registry

    return replace(summary, standing=registry.standing(tracker, made.model, made.version))


def _fingerprint(cfg: Config, dataset: data.Dataset) -> str:
    from pipeline import search

    return search.fingerprint(
        data_digest=dataset.digest,
        split=asdict(cfg.split),
        cfg=cfg.search,
        task=dataset.task,
        impute=cfg.data.missing == config.Missing.impute,
    )


def _setup(cfg: Config, dataset: data.Dataset, parts: Split) -> search.CVSetup:
    from pipeline import search

    numeric, categorical = data.feature_kinds(parts.X_train)
    return search.CVSetup.build(
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
        impute=cfg.data.missing == config.Missing.impute,
        groups=parts.groups_train,
        time_gap=cfg.split.gap if cfg.split.strategy == config.SplitStrategy.time else None,
    )


def _describe(cfg: Config, dataset: data.Dataset) -> None:
    classes = f" of {len(dataset.classes)} classes" if dataset.classes else ""
    log.info(
        "%s: %d rows, %d features, %s%s; scoring %s",
        dataset.name,
        len(dataset.X),
        dataset.X.shape[1],
        dataset.task.value,
        classes,
        cfg.search.scoring,
    )


def _unchanged_champion(
    cfg: Config, tracker: tracking.Tracker, dataset: data.Dataset, digests: dict[str, str]
) -> str | None:
    """Why a retraining job has nothing to do (the champion was trained on this data and
    config), or None."""
    from pipeline import registry

    if cfg.job != config.Job.retrain or not cfg.registry.enabled or cfg.registry.force:
        return None
    name = config.model_name(cfg, dataset.name)
    champion = tracker.alias(name, registry.CHAMPION)
    if champion is None or any(champion.tags.get(k) != v for k, v in digests.items()):
        return None
    reason = f"champion {name} v{champion.version} was trained on this data and config"
    log.info("%s; nothing to do (registry.force=true retrains)", reason)
    return reason


def _open_study(
    cfg: Config,
    dataset: data.Dataset,
    space: search.SearchSpace,
    fingerprint: str,
    tracker: tracking.Tracker,
) -> tuple[Study, str] | StudySummary | WorkerSummary:
    """The study and its parent run (both created if new), or the summary of a finished one."""
    from pipeline import running, tracking
    from pipeline.study import Study

    worker = cfg.job == config.Job.worker
    study = Study.open(
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
            return running.worker_summary(cfg, study, study.parent_run_id, 0)
        summary = tracker.load_summary(study.parent_run_id)
        if summary is not None:
            _say_finished(cfg, study)
            return replace(summary, reused=True)
    if study.resumed:
        verb = "joining" if worker else "resuming"
        log.info("%s study %s (%d trials complete)", verb, study.name, study.n_complete())
    parent = tracker.open_parent(
        study.parent_run_id,
        # Short enough for the UI's run list; the study's full name is a tag.
        run_name=f"{dataset.name} {time.strftime('%Y-%m-%d %H:%M')}",
        tags={
            "pipeline.study_name": study.name,
            "pipeline.fingerprint": fingerprint,
            "pipeline.data_digest": dataset.digest,
            **tracking.git_tags(config.PROJECT_ROOT),
        },
        params=dict(stores.flatten("", stores.public_config(cfg))),
    )
    if parent != study.parent_run_id:
        study.parent_run_id = parent
    return study, parent


def _say_finished(cfg: Config, study: Study) -> None:
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
        log.info("study %s is already finished; search.fresh=true starts a new one", study.name)


def _study(job) -> tuple[StudySummary, dict]:
    """Run or resume the study to its budget, then report it on the parent run."""
    from pipeline import outcome

    try:
        summary, predictions = outcome.search_and_report(job)
        if summary.reused:  # reported by another process meanwhile (or it died closing)
            job.study.mark_finished()
            job.tracker.close_parent(job.parent, "FINISHED")
            return summary, predictions
    except KeyboardInterrupt:
        job.tracker.close_parent(job.parent, "KILLED")
        raise
    except BaseException:
        job.tracker.close_parent(job.parent, "FAILED")
        raise
    job.study.mark_finished()
    job.tracker.close_parent(job.parent, "FINISHED")
    return summary, predictions
