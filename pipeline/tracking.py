"""MLflow (here, in ``trial_log`` and in ``model_store`` only): the experiment, the study's
parent run, its child runs, its outcome. Public MLflow API only: runs are started with
``mlflow.start_run`` (so they carry MLflow's system tags) and filled with ``MlflowClient``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

# Set before MLflow's import, as in trial_log (whichever is imported first).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT
from sqlalchemy.exc import SQLAlchemyError

from pipeline import inputs, sqlite
from pipeline.model_store import ModelStore
from pipeline.stores import mask_url, unreachable
from pipeline.summary import Promotion, StudySummary
from pipeline.trial_log import (
    RETRY_OF,
    ROLE,
    TRIAL_NUMBER,
    StudyLog,
    TrialLogger,
    TrialLoggingError,
    signature,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from sklearn.pipeline import Pipeline

    from pipeline.config import TrackingConfig
    from pipeline.data import Dataset

__all__ = ["RETRY_OF", "ROLE", "TRIAL_NUMBER", "Tracker", "TrialLogger", "TrialLoggingError"]

log = logging.getLogger(__name__)
# MLflow configures its own loggers on import; its INFO lines (schema creation) are noise here.
logging.getLogger("mlflow").setLevel(logging.WARNING)

NOTE = "mlflow.note.content"
DECISION = "decision.json"
# Without a kind, MLflow 3's UI guesses one and may open the experiment on its GenAI
# overview; these runs are model training (the UI's "custom model development").
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
UI_MODEL_TRAINING = "workflowType=machine_learning"
T = TypeVar("T")


class Tracker(ModelStore):
    """One experiment in one tracking store."""

    def __init__(self, *, uri: str, artifact_location: str, experiment_name: str):
        # Global: the trial logger's thread and MLflow's artifact repositories read it.
        path = sqlite.path_of(uri) if uri.startswith("sqlite") else None
        if path is not None:
            sqlite.refuse_empty(path)
        mlflow.set_tracking_uri(uri)
        self.uri = uri
        self.client = MlflowClient(uri)
        self.experiment_id = self._experiment(experiment_name, artifact_location)
        if path is not None:
            sqlite.wal(path)
        # Models logged outside a run's thread take the active experiment, not their run's:
        # without this the best model would land in MLflow's Default experiment.
        mlflow.set_experiment(experiment_id=self.experiment_id)

    @classmethod
    def from_config(cls, cfg: TrackingConfig) -> Tracker:
        """The tracker of a validated ``tracking`` config (absolute URIs)."""
        try:
            return cls(
                uri=cfg.uri,
                artifact_location=cfg.artifact_location,
                experiment_name=cfg.experiment_name,
            )
        except (MlflowException, SQLAlchemyError, sqlite3.Error) as exc:  # unreachable, refused
            raise unreachable("tracking.uri", cfg.uri, exc) from None

    def _experiment(self, name: str, artifact_location: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            if EXPERIMENT_KIND not in found.tags:  # made by an older version or by hand
                self.client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
            return found.experiment_id
        try:
            return self.client.create_experiment(
                name, artifact_location=artifact_location, tags={EXPERIMENT_KIND: MODEL_TRAINING}
            )
        except MlflowException:  # created meanwhile by another process
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    # -- the study's parent run ------------------------------------------------------------

    def open_parent(
        self, run_id: str | None, *, run_name: str, tags: dict[str, str], params: dict[str, Any]
    ) -> str:
        """Reopen the study's parent run, or start it with its tags and params."""
        if run_id is not None:
            try:
                run = self.client.get_run(run_id)
            except MlflowException:
                run = None
            if run is not None and run.info.lifecycle_stage == "active":
                self.client.update_run(run_id, status="RUNNING")
                log.info("resuming MLflow run %s", run_id)
                return run_id

        def start() -> str:
            run = mlflow.start_run(
                experiment_id=self.experiment_id,
                run_name=run_name,
                tags={ROLE: "study", **tags},
                log_system_metrics=False,
            )
            self.client.log_batch(run.info.run_id, params=_params(params))
            return run.info.run_id

        # Started where it cannot become the caller's active run: it is ended by close_parent.
        return _on_own_thread(start)

    def close_parent(self, run_id: str, status: str) -> None:
        """End the parent run; one another process reported (FINISHED) is left as it is."""
        if status != "FINISHED" and self.client.get_run(run_id).info.status == "FINISHED":
            return
        self.client.set_terminated(run_id, status)

    def trial_runs(self, parent_run_id: str) -> list[mlflow.entities.Run]:
        """The parent's child runs, in any state."""
        return self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
            max_results=50_000,
        )

    def settle_trial_runs(self, parent_run_id: str, *, older_than_s: float = 0.0) -> set[int]:
        """End as KILLED the child runs a dead process left RUNNING; return the logged trials.

        Only runs started more than ``older_than_s`` seconds ago count as left behind: a live
        worker may be logging a younger one right now.
        """
        logged = set()
        cutoff = time.time() * 1000 - older_than_s * 1000
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
    ) -> TrialLogger:
        """A logger of trials as child runs of ``parent_run_id`` (a context manager)."""
        study = StudyLog(
            uri=self.uri,
            experiment_id=self.experiment_id,
            parent_run_id=parent_run_id,
            example=(example_X, example_y.to_numpy()),
            pip_requirements=self.pip_requirements,
            log_models=log_models,
        )
        return TrialLogger(study)

    def ui_url(self, run_id: str, *, port: int = 5000) -> str:
        """Where ``make ui`` (or the tracking server itself) shows the run."""
        web = self.uri.startswith(("http://", "https://"))
        base = mask_url(self.uri).rstrip("/") if web else None
        base = base or f"http://127.0.0.1:{port}"
        # MLflow 3's UI opens on its GenAI views unless told (it then remembers the choice).
        return f"{base}/#/experiments/{self.experiment_id}/runs/{run_id}?{UI_MODEL_TRAINING}"

    # -- the end of the study --------------------------------------------------------------

    def log_evidence(
        self,
        run_id: str,
        *,
        params: dict[str, Any],
        best_model: Pipeline,
        example: pd.DataFrame,
        tables: dict[str, pd.Series | pd.DataFrame],
        figures: dict[str, Figure],
        config_yaml: str,
        dataset: Dataset,
        train: tuple[pd.DataFrame, pd.Series],
        holdout: tuple[pd.DataFrame, pd.Series],
    ) -> str:
        """Write the study's chosen model and the evidence for it on its parent run; return
        the model's URI.

        Its inputs: the training rows (context ``training``) and the holdout rows
        (``evaluation``), each an MLflow dataset of ``dataset``'s name and source.
        """
        datasets = [
            inputs.dataset_input(dataset, rows, context)
            for rows, context in ((train, "training"), (holdout, "evaluation"))
        ]
        self.client.log_inputs(run_id, datasets=datasets)
        self.client.log_batch(run_id, params=_params(params))
        self.client.log_text(run_id, config_yaml, "config.yaml")
        for name, table in tables.items():
            self.client.log_text(run_id, table.to_csv(), name)
        for name, fig in figures.items():
            self.client.log_figure(run_id, fig, name)
        return self.log_model(
            run_id,
            best_model,
            name="best_model",
            signature=signature(example, best_model.predict(example)),
            input_example=example,
        ).model_uri

    def log_result(
        self, run_id: str, *, metrics: dict[str, float], summary: StudySummary, description: str
    ) -> None:
        """Write the study's metrics, its description and its summary on its parent run."""
        self.client.log_batch(run_id, metrics=_metrics(metrics), tags=[RunTag(NOTE, description)])
        self.client.log_dict(run_id, summary.to_dict(), "summary.json")

    def log_decision(
        self, run_id: str, decision: Promotion, *, tags: dict[str, str], metrics: dict[str, float]
    ):
        """Record the registry's decision on the study's parent run, once (``decision.json``
        last: a rerun of the finished study reports it instead of deciding again)."""
        self.client.log_batch(
            run_id, metrics=_metrics(metrics), tags=[RunTag(k, str(v)) for k, v in tags.items()]
        )
        self.client.log_dict(run_id, asdict(decision), DECISION)

    def load_summary(self, run_id: str) -> StudySummary | None:
        """The summary a finished study wrote on its parent run; None if there is none (or
        an older version of the pipeline wrote it in another form)."""
        try:
            summary = StudySummary.from_dict(
                mlflow.artifacts.load_dict(f"runs:/{run_id}/summary.json")
            )
        except (MlflowException, KeyError, TypeError):
            return None
        try:  # the registry's decision, if one was made (before decision.json: its tags)
            decision = Promotion.from_dict(mlflow.artifacts.load_dict(f"runs:/{run_id}/{DECISION}"))
        except (MlflowException, TypeError, KeyError):
            decision = Promotion.from_tags(self.client.get_run(run_id).data.tags)
        return replace(summary, promotion=decision)


def _on_own_thread(fn: Callable[[], T]) -> T:
    """``fn()`` run in a thread of its own (MLflow's active runs are per thread)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-run") as pool:
        return pool.submit(fn).result()


def git_tags(root: Path) -> dict[str, str]:
    """MLflow's git commit tag for the project checkout, if there is one."""
    command = ["git", "-C", str(root), "rev-parse", "HEAD"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {}
    return {MLFLOW_GIT_COMMIT: out.stdout.strip()}


def _params(values: dict[str, Any]) -> list[Param]:
    return [Param(k, "" if v is None else str(v)) for k, v in values.items()]


def _metrics(values: dict[str, float]) -> list[Metric]:
    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, 0) for k, v in values.items()]
