"""MLflow, and only here: the study's parent run, one child run per trial, the best model.

Trials are logged by a second process (a thread where there is no fork) so the search never
waits on the store; the parent run is written by the caller at the start and the end of the
study.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import re
import subprocess
import tempfile
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

# MLflow sends usage telemetry unless told not to; a tuning job has no business doing that.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Nor should a cron log fill with "Downloading artifacts" progress bars.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# With a tracking server MLflow prints a "View run at" link per run on stdout: one per trial.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

import mlflow
import numpy as np
import pandas as pd
import sqlalchemy

with warnings.catch_warnings():
    # Importing MLflow's model flavours warns about MLflow's own type hints; nothing to act on.
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred", category=UserWarning)
    import mlflow.pyfunc
    import mlflow.sklearn
from mlflow import MlflowClient
from mlflow.entities import (
    DatasetInput,
    InputTag,
    LifecycleStage,
    Metric,
    Param,
    RunStatus,
    RunTag,
    SourceType,
)
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.store.tracking.dbmodels.models import (
    SqlLatestMetric,
    SqlMetric,
    SqlParam,
    SqlRun,
    SqlTag,
)
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.utils.file_utils import local_file_uri_to_path
from mlflow.utils.mlflow_tags import (
    MLFLOW_DATASET_CONTEXT,
    MLFLOW_GIT_COMMIT,
    MLFLOW_PARENT_RUN_ID,
    MLFLOW_RUN_NAME,
)
from mlflow.utils.uri import append_to_uri_path
from sklearn.dummy import DummyRegressor
from sqlalchemy.exc import SQLAlchemyError
from threadpoolctl import threadpool_limits

from pipeline import evaluate, plots, sqlite
from pipeline.config import mask_url, unreachable
from pipeline.logger_process import END, LoggerGone, LoggerProcess

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from matplotlib.figure import Figure
    from sklearn.pipeline import Pipeline

    from pipeline.config import TrackingConfig
    from pipeline.data import Dataset
    from pipeline.search import TrialResult

log = logging.getLogger(__name__)
# MLflow configures its own loggers on import; its INFO lines (schema creation) are noise here.
logging.getLogger("mlflow").setLevel(logging.WARNING)


class _PickleNotice(logging.Filter):
    """MLflow warns on every pickled model; the trial models are pickled on purpose (they
    are loaded back only from this project's own store) and the README says so."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pickle or cloudpickle format" not in record.getMessage()


logging.getLogger("mlflow.sklearn").addFilter(_PickleNotice())

ROLE = "pipeline.role"
TRIAL_NUMBER = "pipeline.trial_number"
RETRY_OF = "pipeline.retry_of"  # on a retried trial's run: the number of the trial that died
NOTE = "mlflow.note.content"


class Tracker:
    """One experiment in one tracking store."""

    def __init__(self, *, uri: str, artifact_location: str, experiment_name: str):
        mlflow.set_tracking_uri(uri)
        self.uri = uri
        self.client = MlflowClient(uri)
        engine = getattr(self.client._tracking_client.store, "engine", None)
        if uri.startswith("sqlite") and engine is not None:
            sqlite.write_ahead(engine)
        self.experiment_id = self._experiment(experiment_name, artifact_location)
        # Logged models take the active experiment, not their run's: without this they would
        # land in MLflow's Default experiment.
        mlflow.set_experiment(experiment_id=self.experiment_id)
        self.pip_requirements = mlflow.sklearn.get_default_pip_requirements(include_skops=True)

    @classmethod
    def from_config(cls, cfg: TrackingConfig) -> Tracker:
        """The tracker of a validated ``tracking`` config (absolute URIs)."""
        try:
            return cls(
                uri=cfg.uri,
                artifact_location=cfg.artifact_location,
                experiment_name=cfg.experiment_name,
            )
        except (MlflowException, SQLAlchemyError) as exc:  # unreachable, refused, no such db
            raise unreachable("tracking.uri", cfg.uri, exc) from None

    def _experiment(self, name: str, artifact_location: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            return found.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:  # created meanwhile by another process
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    # -- the study's parent run ------------------------------------------------------------

    def open_parent(
        self, run_id: str | None, *, run_name: str, tags: dict[str, str], params: dict[str, Any]
    ) -> str:
        """Reopen the study's parent run, or create it with its tags and params."""
        if run_id is not None:
            try:
                run = self.client.get_run(run_id)
            except MlflowException:
                run = None
            if run is not None and run.info.lifecycle_stage == "active":
                self.client.update_run(run_id, status="RUNNING")
                log.info("resuming MLflow run %s", run_id)
                return run_id
        run = self.client.create_run(
            self.experiment_id, run_name=run_name, tags={ROLE: "study", **tags}
        )
        self.client.log_batch(run.info.run_id, params=_params(params))
        return run.info.run_id

    def close_parent(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)

    def trial_runs(self, parent_run_id: str) -> list[mlflow.entities.Run]:
        """The parent's child runs, in any state."""
        return self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.{MLFLOW_PARENT_RUN_ID} = '{parent_run_id}'",
            max_results=50_000,
        )

    def settle_trial_runs(self, parent_run_id: str, *, older_than_s: float = 0.0) -> set[int]:
        """End as KILLED the child runs a dead process left RUNNING; return the logged trials.

        Only runs started more than ``older_than_s`` seconds ago count as left behind: a live
        worker may be logging a younger one right now.
        """
        logged = set()
        cutoff = _now_ms() - older_than_s * 1000
        for run in self.trial_runs(parent_run_id):
            if run.info.status == "RUNNING" and run.info.start_time <= cutoff:
                self.client.set_terminated(run.info.run_id, "KILLED")
            elif run.info.status == "FINISHED" and TRIAL_NUMBER in run.data.tags:
                logged.add(int(run.data.tags[TRIAL_NUMBER]))
        return logged

    def trial_logger(
        self,
        parent_run_id: str,
        *,
        example_X: pd.DataFrame,
        example_y: pd.Series,
        log_models: bool,
        process: LoggerProcess | None = None,
    ) -> TrialLogger:
        """A logger of trials as child runs of ``parent_run_id``, in ``process`` (the job's
        logging process) or in one of its own."""
        return TrialLogger(
            self,
            parent_run_id,
            example=(example_X, example_y.to_numpy()),
            log_models=log_models,
            process=process,
        )

    def ui_url(self, run_id: str, *, port: int = 5000) -> str:
        """Where ``make ui`` (or the tracking server itself) shows the run."""
        web = self.uri.startswith(("http://", "https://"))
        base = mask_url(self.uri).rstrip("/") if web else None
        base = base or f"http://127.0.0.1:{port}"
        return f"{base}/#/experiments/{self.experiment_id}/runs/{run_id}"

    def log_model(
        self, run_id: str, estimator: Pipeline, *, name: str, **kwargs: Any
    ) -> mlflow.models.model.ModelInfo:
        """Log a fitted pipeline as an MLflow model of ``run_id``."""
        return mlflow.sklearn.log_model(
            estimator,
            name=name,
            run_id=run_id,
            pip_requirements=self.pip_requirements,
            # skops refuses unknown types; a dtype (kept by the imputer and encoder) is data.
            skops_trusted_types=["numpy.dtype"],
            **kwargs,
        )

    # -- the end of the study --------------------------------------------------------------

    def log_outcome(
        self,
        run_id: str,
        *,
        params: dict[str, Any],
        metrics: dict[str, float],
        best_model: Pipeline,
        example: pd.DataFrame,
        coefficients: pd.Series | pd.DataFrame,
        figures: dict[str, Figure],
        config_yaml: str,
        summary: dict[str, Any],
        description: str,
        dataset: Dataset,
    ) -> str:
        """Write the study's result on its parent run; return the best model's URI."""
        frame = pd.concat([dataset.X, dataset.y], axis=1)
        with warnings.catch_warnings():
            # A local path matches two of MLflow's source types, which it warns about.
            warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways")
            ds = mlflow.data.from_pandas(
                frame,
                source=dataset.source if "/" in dataset.source else None,
                targets=str(dataset.y.name),
                name=dataset.name,
                digest=dataset.digest,
            )
        context = [InputTag(MLFLOW_DATASET_CONTEXT, "training")]
        self.client.log_inputs(run_id, datasets=[DatasetInput(ds._to_mlflow_entity(), context)])
        now = _now_ms()
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=_params(params),
            tags=[RunTag(NOTE, description)],
        )
        self.client.log_text(run_id, config_yaml, "config.yaml")
        self.client.log_text(run_id, coefficients.to_csv(), "coefficients.csv")
        for name, fig in figures.items():
            self.client.log_figure(run_id, fig, name)
        signature = _signature(example, best_model.predict(example))
        uri = self.log_model(
            run_id, best_model, name="best_model", signature=signature, input_example=example
        ).model_uri
        self.client.log_dict(run_id, {**summary, "best_model_uri": uri}, "summary.json")
        return uri

    # -- the model registry -----------------------------------------------------------------

    def register(self, model_uri: str, name: str, *, run_id: str, tags: dict[str, Any]) -> str:
        """Register ``model_uri`` as a new version of ``name`` (once per run); return it."""
        existing = self.version_of_run(name, run_id)
        if existing is not None:
            return existing
        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        # A tracking server wants the logged model named, not only its models:/ URI.
        model_id = (
            model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
        )
        version = self.client.create_model_version(
            name,
            model_uri,
            run_id=run_id,
            tags={k: str(v) for k, v in tags.items()},
            model_id=model_id,
        )
        return version.version

    def version_of_run(self, name: str, run_id: str) -> str | None:
        """The version of ``name`` registered from ``run_id``, if any."""
        try:
            found = self.client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
        except MlflowException:
            return None
        return min((v.version for v in found), key=int) if found else None

    def alias(self, name: str, alias: str) -> mlflow.entities.model_registry.ModelVersion | None:
        """The version ``name@alias`` points to, or None."""
        try:
            return self.client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(name, version).tags)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def tag_version(self, name: str, version: str, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, str(value))

    def load_model(self, uri: str) -> Pipeline:
        """The scikit-learn pipeline behind a ``models:/`` or ``runs:/`` URI."""
        return mlflow.sklearn.load_model(uri)

    def log_decision(self, run_id: str, *, tags: dict[str, str], metrics: dict[str, float]):
        """Record the registry's decision on the study's parent run."""
        now = _now_ms()
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )

    def load_summary(self, run_id: str) -> dict[str, Any] | None:
        try:
            return mlflow.artifacts.load_dict(f"runs:/{run_id}/summary.json")
        except MlflowException:
            return None


class TrialLogger:
    """Logs each finished trial of one study as a child run, in a separate process.

    The search and the logging then run on different cores, so a study with logging on
    takes about as long as one without (``make bench`` measures it). The process is the
    job's ``LoggerProcess`` (started before the data was loaded), or one of its own.
    Use as a context manager: leaving it waits until every submitted trial is logged and
    re-raises the first logging error, if any.
    """

    def __init__(
        self,
        tracker: Tracker,
        parent_run_id: str,
        *,
        example: tuple[pd.DataFrame, np.ndarray],
        log_models: bool,
        process: LoggerProcess | None = None,
    ):
        self.study = StudyLog(
            uri=tracker.uri,
            experiment_id=tracker.experiment_id,
            parent_run_id=parent_run_id,
            example=example,
            pip_requirements=tracker.pip_requirements,
            log_models=log_models,
        )
        self.process = process
        self._own = process is None
        self.seconds = 0.0
        self.count = 0
        self._submitted = 0
        self._ended = False  # the process said the study's trials are all logged
        self._gone = False  # the process has ended
        self._error: str | None = None

    def __enter__(self) -> TrialLogger:
        if self.process is None:
            self.process = LoggerProcess()
        self.process.used = True
        try:
            self._put(("study", self.study))
        except BaseException:
            if self._own:
                self.process.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        with contextlib.suppress(TrialLoggingError):  # the process is gone: reported below
            self._put(END)
        # A short poll: the answer comes right after the last trial is logged, and a long
        # wait would be added to every study's time.
        while not (self._ended or self._gone):
            self._collect(timeout=0.01)
            if not self.process.alive():
                self._collect()  # what it said before it went
                break
        if self._own:
            self.process.close()
        if self._error is None and self.count < self._submitted:
            missing = self._submitted - self.count
            self._error = f"the trial logger stopped with {missing} trials not logged"
        if self._error is not None and exc is None:
            raise TrialLoggingError(self._error)

    def pending(self) -> int:
        """Trials submitted but not yet logged."""
        self._collect()
        return self._submitted - self.count

    def submit(self, result: TrialResult) -> None:
        self._collect()
        if self._error is not None:
            raise TrialLoggingError(self._error)
        self._put(result)
        self._submitted += 1

    def _put(self, item) -> None:
        try:
            self.process.send(item)
        except LoggerGone:
            self._collect()
            raise TrialLoggingError(self._error or "the trial logger died") from None

    def _collect(self, timeout: float = 0.0) -> None:
        """Read what the process reported, waiting up to ``timeout`` for a first message."""
        while not self._gone:
            try:
                message = self.process.receive(timeout)
            except LoggerGone:
                self._gone = True
                return
            if message is None:
                return
            kind, seconds, error = message
            self.seconds += seconds
            self.count += kind == "trial"
            self._ended |= kind == END
            if error is not None and self._error is None:
                self._error = error
            timeout = 0.0


@dataclass(frozen=True)
class StudyLog:
    """What the logging process needs to know of a study (sent to it, so plain values)."""

    uri: str
    experiment_id: str
    parent_run_id: str
    example: tuple[pd.DataFrame, np.ndarray]  # a few rows and their targets: the signature
    pip_requirements: list[str]
    log_models: bool


def serve(inbox: Connection, outbox: Connection, parent_pid: int | None) -> None:
    """The logging process's loop: one study after another, until told to stop (``None``)
    or until the job's process is gone."""
    if parent_pid is not None:
        # No BLAS threads of its own to spin on the search's core (see Study.optimize).
        threadpool_limits(limits=1)
    while True:
        message = _next(inbox, parent_pid)
        if message is None or not _log_study(message[1], inbox, outbox, parent_pid):
            return


def _next(inbox: Connection, parent_pid: int | None) -> Any:
    """The next message, or None once the job's process is gone (checked before each
    message: what a dead job sent is for the next job to log again, and its runs to settle)."""
    while parent_pid is None or os.getppid() == parent_pid:
        if inbox.poll(1.0):
            return inbox.recv()  # EOFError if the job's process closed its end (exited)
    return None


def _log_study(
    study: StudyLog, inbox: Connection, outbox: Connection, parent_pid: int | None
) -> bool:
    """Log the study's trials until its end marker; False if the job's process is gone."""
    error = None  # once set, the study's other trials are not logged
    try:
        writer = _StudyWriter(study)
    except Exception as exc:  # reported to the search's process
        error = f"{type(exc).__name__}: {exc}"
    unreported = error  # each error is sent once: the job keeps the first
    while True:
        result = _next(inbox, parent_pid)
        if result is None:
            return False
        if result == END:
            outbox.send((END, 0.0, None))
            return True
        start = time.perf_counter()
        if error is None:
            try:
                writer.log_trial(result)
            except Exception as exc:  # reported to the search's process
                log.error("logging trial %d failed: %s", result.number, exc)
                error = unreported = f"{type(exc).__name__}: {exc}"
        outbox.send(("trial", time.perf_counter() - start, unreported))
        unreported = None


_owners: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _adopt(engine) -> None:
    """Make ``engine``'s pool this process's own: MLflow caches its store (and engine) per
    URI, so a forked process may hold its parent's, whose connections it must not use."""
    if _owners.get(engine) != os.getpid():
        engine.dispose(close=False)  # forget them; the parent still uses them
        _owners[engine] = os.getpid()


class _StudyWriter:
    """Writes one study's trials as child runs of its parent run."""

    def __init__(self, study: StudyLog):
        self.study = study
        # Artifact repositories other than files (a tracking server's) read the global URI.
        mlflow.set_tracking_uri(study.uri)
        client = MlflowClient(study.uri)
        engine = getattr(client._tracking_client.store, "engine", None)
        if engine is not None:
            _adopt(engine)
            if study.uri.startswith("sqlite"):
                sqlite.write_ahead(engine)
        self.runs = RunWriter(client, study.experiment_id)
        # The models' signature, inferred here: a few milliseconds off the search's process.
        self.models = ModelFolders(_signature(*study.example), study.pip_requirements)
        if study.log_models:
            self.models.prepare()

    def log_trial(self, result: TrialResult) -> None:
        """One child run: params, CV metrics, coefficients table and plot, and the model."""
        candidate = result.candidate
        tags = {
            ROLE: "trial",
            MLFLOW_PARENT_RUN_ID: self.study.parent_run_id,
            TRIAL_NUMBER: str(result.number),
            "penalty": candidate.penalty.value,
            **({RETRY_OF: str(result.retry_of)} if result.retry_of is not None else {}),
        }
        params = {k: "" if v is None else str(v) for k, v in candidate.params().items()}
        name = candidate.label
        if result.error is not None:
            tags["fail_reason"] = result.error[:FAIL_REASON_CHARS]
            self.runs.write(name, tags=tags, params=params, status="FAILED")
            return
        if result.pruned:
            # Stopped after its first folds (see search.FoldPruner): those folds' scores only.
            folds = {f"cv_score_fold{i}": s for i, s in enumerate(result.cv_scores)}
            tags.update(pruned="true", pruned_after_folds=str(len(folds)))
            self.runs.write(name, tags=tags, params=params, metrics=folds, status="FINISHED")
            return
        coefs = evaluate.coefficients(result.estimator)
        metrics = {
            "cv_score_mean": result.cv_score_mean,
            "cv_score_std": result.cv_score_std,
            "train_score_mean": float(np.mean(result.train_scores)),
            **{f"cv_score_fold{i}": s for i, s in enumerate(result.cv_scores)},
            "n_nonzero_coefs": evaluate.n_nonzero(coefs),
            "fit_time_s": result.fit_time_s,
            "converged": float(result.converged),
        }

        def files(folder: Path) -> None:
            # The model is saved as run artifacts (runs:/<run>/model loads it); a logged-model
            # entity per trial would cost more than the trial. The study's best model is a
            # logged model, and the registered one.
            (folder / "coefficients.csv").write_text(coefficients_csv(coefs))
            title = f"Coefficients, trial {result.number}: {candidate.label}"
            (folder / "coefficients.svg").write_text(plots.coefficient_svg(coefs, title=title))
            if self.study.log_models:
                self.models.save(result.estimator, folder / "model")

        start = result.started_ms
        self.runs.write(
            name,
            tags=tags,
            params=params,
            metrics=metrics,
            status="FINISHED",
            files=files,
            start_ms=start,
            end_ms=None if start is None else start + round(result.fit_time_s * 1000),
        )


def coefficients_csv(coefs: pd.Series | pd.DataFrame) -> str:
    """``coefs.to_csv()``, written directly: pandas took ~0.5 ms of a trial's ~3 ms of logging."""
    table = coefs.to_frame() if isinstance(coefs, pd.Series) else coefs
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["", *table.columns.tolist()])
    names = table.index.tolist()
    for name, values in zip(names, table.to_numpy(dtype=float).tolist(), strict=True):
        writer.writerow([name, *("" if v != v else v for v in values)])  # NaN: empty, as pandas
    return out.getvalue()


# A failed trial's reason is a tag: MLflow caps tag values (8,000 characters); one line is enough.
FAIL_REASON_CHARS = 1000


class RunWriter:
    """Writes runs whole: created, filled and ended at once, artifacts first.

    On MLflow's SQL stores (SQLite, PostgreSQL) a run is one transaction into the store's
    tables, through MLflow's own table models, where ``MlflowClient`` takes three calls
    (``create_run``, ``log_batch``, ``set_terminated``) and about ten queries: ~1 ms a run
    against ~8 ms on SQLite, and the difference between logging keeping up with the search
    or not. No reader ever sees the run half-written, and a process killed mid-run leaves no
    RUNNING run, at most unreferenced artifact files. ``tests/test_tracking.py`` checks
    that such a run reads back exactly as one written by the client. On any other store (a
    tracking server) the client's three calls write it.
    """

    def __init__(self, client: MlflowClient, experiment_id: str):
        self.client = client
        self.experiment_id = experiment_id
        store = client._tracking_client.store
        self._sql = store if isinstance(store, SqlAlchemyStore) else None
        self._location = self.client.get_experiment(self.experiment_id).artifact_location

    def write(
        self,
        name: str,
        *,
        tags: dict[str, str],
        params: dict[str, str],
        status: str,
        metrics: dict[str, float] | None = None,
        files: Callable[[Path], None] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> str:
        """Log one run; ``files(folder)`` writes its artifacts into ``folder``. Its run id."""
        end_ms = end_ms or _now_ms()
        start_ms = min(start_ms or end_ms, end_ms)
        metrics = metrics or {}
        if self._sql is None:
            return self._write_with_client(name, tags, params, metrics, status, files, end_ms)
        run_id = uuid.uuid4().hex
        artifact_uri = append_to_uri_path(self._location, run_id, "artifacts")
        if files is not None:
            _upload(artifact_uri, files)
        tags = {**tags, MLFLOW_RUN_NAME: name}
        sanitized = {k: self._sql.sanitize_metric_value(float(v)) for k, v in metrics.items()}
        values = [
            {
                "key": k,
                "value": v,
                "timestamp": end_ms,
                "step": 0,
                "is_nan": nan,
                "run_uuid": run_id,
            }
            for k, (nan, v) in sanitized.items()
        ]
        run = {
            "name": name,
            "artifact_uri": artifact_uri,
            "run_uuid": run_id,
            "experiment_id": int(self.experiment_id),
            "source_type": SourceType.to_string(SourceType.UNKNOWN),
            "source_name": "",
            "entry_point_name": "",
            "user_id": "unknown",
            "status": RunStatus.to_string(RunStatus.from_string(status)),
            "start_time": start_ms,
            "end_time": end_ms,
            "deleted_time": None,
            "source_version": "",
            "lifecycle_stage": LifecycleStage.ACTIVE,
        }
        # Plain INSERTs (executemany), not ORM objects: the ORM's bookkeeping was half the cost.
        rows = [
            (SqlRun, [run]),
            (SqlTag, [{"run_uuid": run_id, "key": k, "value": v} for k, v in tags.items()]),
            (SqlParam, [{"run_uuid": run_id, "key": k, "value": v} for k, v in params.items()]),
            (SqlMetric, values),
            (SqlLatestMetric, values),
        ]
        with self._sql.ManagedSessionMaker(read_only=False) as session:
            for model, table_rows in rows:
                if table_rows:
                    session.execute(sqlalchemy.insert(model.__table__), table_rows)
        return run_id

    def _write_with_client(self, name, tags, params, metrics, status, files, end_ms):
        # Created now, not at the trial's start: a run left RUNNING for longer than the grace
        # period is taken for a dead process's (Tracker.settle_trial_runs).
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        run_id = run.info.run_id
        try:
            if files is not None:
                _upload(run.info.artifact_uri, files)
            self.client.log_batch(
                run_id,
                params=[Param(k, v) for k, v in params.items()],
                metrics=[Metric(k, float(v), end_ms, 0) for k, v in metrics.items()],
            )
            self.client.set_terminated(run_id, status)
        except BaseException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        return run_id


def _upload(artifact_uri: str, files: Callable[[Path], None]) -> None:
    """Write a run's artifacts: straight into a local artifact folder, else through MLflow's
    artifact repository."""
    if artifact_uri.startswith("file:"):
        folder = Path(local_file_uri_to_path(artifact_uri))
        folder.mkdir(parents=True, exist_ok=True)
        files(folder)
        return
    with tempfile.TemporaryDirectory() as tmp:
        files(Path(tmp))
        get_artifact_repository(artifact_uri).log_artifacts(tmp)


class ModelFolders:
    """Trial models saved as ``mlflow.sklearn.save_model`` saves them (pickle format), at a
    fraction of its cost.

    Pickle: skops took ~200 ms a model here (it looks up installed package versions on every
    save). The registered best model is skops. The first folder comes from ``save_model``.
    Every later one is the same but for the pickle and three MLmodel fields: the model's
    uuid, creation time and size. So its other files are copied and those fields filled
    in, which spares re-serializing the signature's YAML (most of the cost, and growing
    with the number of columns). If save_model's output ever stops matching that shape,
    every folder comes from save_model.
    """

    FIELDS: ClassVar[dict[str, re.Pattern]] = {
        "model_size_bytes": re.compile(r"^model_size_bytes: \d+$", re.M),
        "model_uuid": re.compile(r"^model_uuid: [0-9a-f]{32}$", re.M),
        "utc_time_created": re.compile(r"^utc_time_created: '[^'\n]*'$", re.M),
    }
    PICKLE = "model.pkl"

    def __init__(self, signature, pip_requirements: list[str]):
        self.signature = signature
        self.pip_requirements = pip_requirements
        # None until the first folder is written; empty if save_model's output did not have
        # the expected shape (every folder then comes from save_model).
        self._template: dict[str, str] | None = None

    def prepare(self) -> None:
        """Write the template now, from a stand-in model (nothing in the files but the pickle
        and its size depends on the model): save_model's first call scans the installed
        packages (a fraction of a second), which then overlaps the search's first trials."""
        if self._template is None:
            with tempfile.TemporaryDirectory() as tmp:
                stand_in = DummyRegressor().fit(np.zeros((1, 1)), np.zeros(1))
                self.save(stand_in, Path(tmp, "model"))

    def save(self, estimator, path: Path) -> None:
        if not self._template:
            mlflow.sklearn.save_model(
                estimator,
                path,
                pip_requirements=self.pip_requirements,
                signature=self.signature,
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
            )
            if self._template is None:
                self._template = self._read(path)
            return
        path.mkdir(parents=True)
        mlflow.sklearn._save_model(
            estimator, str(path / self.PICKLE), mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE, None
        )
        values = {
            "model_size_bytes": str((path / self.PICKLE).stat().st_size),
            "model_uuid": uuid.uuid4().hex,
            "utc_time_created": f"'{datetime.now(UTC).replace(tzinfo=None)}'",
        }
        for name, text in self._template.items():
            if name == "MLmodel":
                for key, pattern in self.FIELDS.items():
                    text = pattern.sub(f"{key}: {values[key]}", text)
            (path / name).write_text(text)

    def _read(self, path: Path) -> dict[str, str]:
        files = {f.name: f for f in path.iterdir()}
        if (
            self.PICKLE not in files
            or "MLmodel" not in files
            or any(f.is_dir() for f in files.values())
        ):
            return {}
        template = {name: f.read_text() for name, f in files.items() if name != self.PICKLE}
        mlmodel = template["MLmodel"]
        return template if all(len(p.findall(mlmodel)) == 1 for p in self.FIELDS.values()) else {}


class TrialLoggingError(RuntimeError):
    """Logging a trial to MLflow failed (the message is the original error's)."""


def _signature(inputs: pd.DataFrame, outputs):
    """The model signature; MLflow's hint about integer columns and missing values is noise
    here: the models are logged with their own pipeline, which handles both."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column")
        return infer_signature(inputs, outputs)


def git_tags(root: Path) -> dict[str, str]:
    """MLflow's git commit tag for the project checkout, if there is one."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    return {MLFLOW_GIT_COMMIT: out.stdout.strip()}


def _params(values: dict[str, Any]) -> list[Param]:
    return [Param(k, "" if v is None else str(v)) for k, v in values.items()]


def _now_ms() -> int:
    return int(time.time() * 1000)


def flatten(prefix: str, values: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` as ``("prefix.a.b", 1)`` pairs."""
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            yield from flatten(name, value)
        else:
            yield name, value
