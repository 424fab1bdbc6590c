"""Each trial of a study as an MLflow child run, logged by background worker processes.

The worker calls MLflow's public API, as a user's script would: ``mlflow.start_run`` with
the study's parent run, ``mlflow.sklearn.log_model`` (so each trial's model is a logged
model of its run) and ``MlflowClient.log_batch``. The search hands finished trials over
with ``submit`` and never waits on the store; in the processes of ``pipeline.log_pool``
the logging runs on the second core.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from concurrent.futures import Future, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# MLflow sends usage telemetry unless told not to; a tuning job has no business doing that.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Nor should a cron log fill with "Downloading artifacts" progress bars.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# With a tracking server MLflow prints a "View run at" link per run on stdout: one per trial.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

import mlflow
import numpy as np
import pandas as pd

with warnings.catch_warnings():
    # Importing MLflow's model flavours warns about MLflow's own type hints; nothing to act on.
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred", category=UserWarning)
    import mlflow.pyfunc
    import mlflow.sklearn
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.models import infer_signature

from pipeline import evaluate, log_pool, plots, progress
from pipeline.errors import StoreWriteError
from pipeline.model_store import SKOPS_TRUSTED_TYPES

if TYPE_CHECKING:
    from pipeline.search import TrialResult

log = logging.getLogger(__name__)

ROLE = "pipeline.role"
TRIAL_NUMBER = "pipeline.trial_number"
RETRY_OF = "pipeline.retry_of"  # on a retried trial's run: the number of the trial that died
# A failed trial's reason is a tag: MLflow caps tag values (8,000 characters); one line is enough.
FAIL_REASON_CHARS = 1000
# How long leaving the logger on an exception (Ctrl-C) waits for the trials already handed
# over, the interrupted one among them; whatever is left is logged again by the next run.
DRAIN_SECONDS = 30.0

# Seconds the worker sleeps before logging each trial: lets a test interrupt a job while
# trials are still being logged. Never set in production.
PAUSE_IN_LOGGING = "PIPELINE_TEST_PAUSE_IN_LOGGING"


class TrialLoggingError(RuntimeError):
    """Logging a trial to MLflow failed (the message is the original error's)."""


class TrialStoreError(TrialLoggingError, StoreWriteError):
    """Logging a trial failed on writing a store (a full disk, a read-only folder)."""


@dataclass(frozen=True)
class StudyLog:
    """Where and how one study's trials are logged."""

    uri: str  # the tracking URI
    experiment_id: str
    parent_run_id: str
    example: tuple[pd.DataFrame, np.ndarray]  # a few rows and their targets: the signature
    pip_requirements: list[str]
    log_models: bool


class TrialLogger:
    """Logs each submitted trial as a child run, in a worker process of its own.

    The worker calls the same public MLflow API a script would; in a process of its own it
    runs on the second core instead of competing with the search for the interpreter. Use
    as a context manager. Leaving it waits until every submitted trial is logged and
    re-raises the first logging error as ``TrialLoggingError``. Left on an exception (a
    Ctrl-C), it waits at most ``drain_s`` seconds for what was submitted.
    """

    def __init__(self, study: StudyLog, *, drain_s: float = DRAIN_SECONDS):
        self.study = study
        self.drain_s = drain_s
        self.seconds = 0.0  # spent logging, in total
        self.count = 0  # trials logged
        self._futures: list[Future] = []
        self._error: str | None = None
        self._io = False  # the first error was the operating system's (OSError)

    def __enter__(self) -> TrialLogger:
        log_pool.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc is None:
                self._wait_all()
            else:
                wait(self._futures, timeout=self.drain_s)
        except BaseException:  # a second Ctrl-C while waiting: stop, drop the queue
            log_pool.stop()
            raise
        finally:
            self._collect()
            if exc is not None:
                log_pool.stop()
        if exc is None and self._error is None and self.pending():
            self._error = f"the trial logger stopped with {self.pending()} trials not logged"
        if exc is None and self._error is not None:
            raise (TrialStoreError if self._io else TrialLoggingError)(self._error)

    def _wait_all(self) -> None:
        """Wait for every submitted trial; say so, with a bar on a terminal, if any is left."""
        left = self.pending()
        if not left:
            return
        with progress.phase(f"waiting for MLflow to log the last {progress.plural(left, 'trial')}"):
            bar = progress.bar(left, "logging trials", "trial")
            for _ in as_completed(self._futures):
                bar.update()
            bar.close()

    def submit(self, result: TrialResult) -> None:
        """Hand a finished trial over; raises the first logging error, if any."""
        self._collect()
        if self._error is not None:
            raise (TrialStoreError if self._io else TrialLoggingError)(self._error)
        try:
            pause = float(os.environ.get(PAUSE_IN_LOGGING, "0"))
            future = log_pool.submit(_log_in_worker, self.study, result, pause)
            self._futures.append(future)
        except BrokenProcessPool as exc:
            log_pool.stop()  # the next logger starts new workers
            raise TrialLoggingError(f"the trial logger died: {exc}") from None

    def pending(self) -> int:
        """Trials submitted but not yet logged."""
        self._collect()
        return len(self._futures)

    def _collect(self) -> None:
        """Take in what the worker finished: time spent, trials logged, the first error."""
        still = []
        for future in self._futures:
            if not future.done():
                still.append(future)
            elif future.cancelled():
                continue
            elif future.exception() is not None:
                exc = future.exception()
                log.error("logging a trial failed: %s", exc)
                if self._error is None:
                    self._error, self._io = f"{type(exc).__name__}: {exc}", isinstance(exc, OSError)
            else:
                self.seconds += future.result()
                self.count += 1
        self._futures = still


_writers: dict[str, TrialWriter] = {}  # in a worker: by parent run


def warm_up() -> None:
    """In a worker, at start: import what logging a model imports on first use."""
    import skops.io  # noqa: F401


def _log_in_worker(study: StudyLog, result: TrialResult, pause: float) -> float:
    """Log one trial; the seconds it took."""
    start = time.perf_counter()
    time.sleep(pause)  # fault injection for the drain test; 0 in production
    if mlflow.get_tracking_uri() != study.uri:
        mlflow.set_tracking_uri(study.uri)
    writer = _writers.get(study.parent_run_id)
    if writer is None:
        writer = _writers[study.parent_run_id] = TrialWriter(study)
    writer.log(result)
    return time.perf_counter() - start


class TrialWriter:
    """Writes one study's trials as child runs of its parent run (in the calling thread)."""

    def __init__(self, study: StudyLog):
        self.study = study
        self.client = MlflowClient(study.uri)
        # Inferred here, once: a few milliseconds off the search's thread.
        self.signature = signature(*study.example) if study.log_models else None

    def log(self, result: TrialResult) -> str:
        """One child run: params, CV metrics, coefficients table and plot, and the model."""
        params = [
            Param(k, "" if v is None else str(v)) for k, v in result.candidate.params().items()
        ]
        with mlflow.start_run(
            experiment_id=self.study.experiment_id,
            run_name=run_name(result),
            parent_run_id=self.study.parent_run_id,
            tags=trial_tags(result),
            log_system_metrics=False,
        ) as run:
            run_id = run.info.run_id
            if result.error is not None:
                self.client.log_batch(run_id, params=params)
                mlflow.end_run("FAILED")
            elif result.pruned:
                # Stopped after its first folds: those folds' scores only.
                self.client.log_batch(
                    run_id, metrics=_metrics(run_id, _folds(result)), params=params
                )
            else:
                self._log_complete(run_id, result, params)
        return run_id

    def _log_complete(self, run_id: str, result: TrialResult, params: list[Param]) -> None:
        coefs = evaluate.coefficients(result.estimator)
        model_id = None
        if self.study.log_models:
            model_id = mlflow.sklearn.log_model(
                result.estimator,
                name="model",
                signature=self.signature,
                pip_requirements=self.study.pip_requirements,
                params={p.key: p.value for p in params},
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
            ).model_id
        metrics = {
            "cv_score_mean": result.cv_score_mean,
            "cv_score_std": result.cv_score_std,
            "train_score_mean": float(np.mean(result.train_scores)),
            **_folds(result),
            "n_nonzero_coefs": evaluate.n_nonzero(coefs),
            "fit_time_s": result.fit_time_s,
            "converged": float(result.converged),
        }
        # One batch, linked to the trial's model: the Models view compares trials by them.
        self.client.log_batch(run_id, metrics=_metrics(run_id, metrics, model_id), params=params)
        title = f"Coefficients, trial {result.number}: {result.candidate.label}"
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "coefficients.csv").write_text(coefs.to_csv())
            Path(tmp, "coefficients.svg").write_text(plots.coefficient_svg(coefs, title=title))
            mlflow.log_artifacts(tmp)


def run_name(result: TrialResult) -> str:
    """E.g. ``trial 12 · l1 α=0.0123``: sorted by name, runs are in trial order."""
    return f"trial {result.number} · {result.candidate.label}"


def trial_tags(result: TrialResult) -> dict[str, str]:
    tags = {
        ROLE: "trial",
        TRIAL_NUMBER: str(result.number),
        "penalty": result.candidate.penalty.value,
    }
    if result.retry_of is not None:
        tags[RETRY_OF] = str(result.retry_of)
    if result.error is not None:
        tags["fail_reason"] = result.error[:FAIL_REASON_CHARS]
    elif result.pruned:
        tags.update(pruned="true", pruned_after_folds=str(len(result.cv_scores)))
    return tags


def _folds(result: TrialResult) -> dict[str, float]:
    return {f"cv_score_fold{i}": float(s) for i, s in enumerate(result.cv_scores)}


def _metrics(run_id: str, values: dict[str, Any], model_id: str | None = None) -> list[Metric]:
    now = int(time.time() * 1000)
    return [
        Metric(k, float(v), now, 0, model_id=model_id, run_id=run_id) for k, v in values.items()
    ]


def signature(inputs: pd.DataFrame, outputs) -> mlflow.models.ModelSignature:
    """The model signature; MLflow's hint about integer columns and missing values is noise
    here: the models are logged with their own pipeline, which handles both."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column")
        return infer_signature(inputs, outputs)
