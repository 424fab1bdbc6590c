"""Models in MLflow: logging a fitted pipeline as a logged model, registering it as a
version of a registered model with aliases and tags, and loading it back.

Public ``mlflow.sklearn`` and ``MlflowClient`` API only; ``tracking.Tracker`` is one.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import warnings
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Set before MLflow's import, as in tracking (whichever is imported first).
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow

with warnings.catch_warnings():
    # Importing MLflow's model flavours warns about MLflow's own type hints; nothing to act on.
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred", category=UserWarning)
    import mlflow.pyfunc
    import mlflow.sklearn
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from pipeline import model_files, probe, sqlite
from pipeline.errors import UserError
from pipeline.stores import unreachable

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.models.model import ModelInfo
    from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)

# skops refuses unknown types on load; a dtype (kept by the imputer and encoder) is data.
SKOPS_TRUSTED_TYPES = ["numpy.dtype"]
# A version refitted on all rows names the training fit the gate judged, and its digest.
JUDGED_URI_TAG, JUDGED_DIGEST_TAG = "judged_model_uri", "judged_model_digest"


class ModelStore:
    """The model operations of a tracker (which sets ``client``)."""

    client: MlflowClient

    @cached_property
    def pip_requirements(self) -> list[str]:
        """The models' requirements, computed once: inferred, they cost seconds a model."""
        return mlflow.sklearn.get_default_pip_requirements(include_skops=True)

    def log_model(self, run_id: str, estimator: Pipeline, *, name: str, **kwargs: Any) -> ModelInfo:
        """Log a fitted pipeline as an MLflow logged model of ``run_id`` (skops format)."""
        with warnings.catch_warnings():
            # MLflow compares an input example's column labels with a range, which pandas 3
            # deprecates for its string labels; the example is saved as it should be.
            warnings.filterwarnings("ignore", message="Operation with range is deprecated")
            return mlflow.sklearn.log_model(
                estimator,
                name=name,
                run_id=run_id,
                pip_requirements=self.pip_requirements,
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
                **kwargs,
            )

    def load_model(self, uri: str) -> Pipeline:
        """The scikit-learn pipeline behind a ``models:/`` or ``runs:/`` URI."""
        return mlflow.sklearn.load_model(uri)

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
        tags = {**tags, model_files.DIGEST_TAG: _digest_of(model_uri)}  # checked on load
        if JUDGED_URI_TAG in tags:  # the fit the gate judged, loaded to re-score a champion
            tags[JUDGED_DIGEST_TAG] = _digest_of(tags[JUDGED_URI_TAG])
        version = self.client.create_model_version(
            name,
            model_uri,
            run_id=run_id,
            tags={k: str(v) for k, v in tags.items()},
            model_id=model_id,
        )
        return version.version

    def verify(self, name: str, alias: str) -> str:
        """The version ``name@alias`` names, once ``load_version`` accepts its files."""
        version = self.alias(name, alias)
        if version is None:
            raise UserError(f"registry.model_name: {name!r} has no version @{alias}")
        self.load_version(name, version.version)
        return version.version

    def load_version(self, name: str, version: str, *, load: bool = True) -> Pipeline | None:
        """Version ``version`` of ``name``, loaded only if its files are the ones registered
        and in the skops format (``model_files.check``); ``UserError`` otherwise. With
        ``load=False`` the files are only checked."""
        expected = self.version_tags(name, version).get(model_files.DIGEST_TAG)
        what = f"{name} version {version}"
        if expected is None:
            log.warning(
                "%s has no %s tag (registered before digests were)", what, model_files.DIGEST_TAG
            )
        return _load_checked(f"models:/{name}/{version}", expected, what, load=load)

    def load_judged(self, name: str, version: str) -> Pipeline:
        """The fit whose holdout metrics the gate judged when ``version`` was registered: the
        version itself, or (refitted on all rows) its training fit, checked as the version
        is. A refit has seen the rows of any later holdout drawn from the same file."""
        tags = self.version_tags(name, version)
        if JUDGED_URI_TAG not in tags:
            return self.load_version(name, version)
        self.load_version(name, version, load=False)  # a champion whose files changed: refused
        what = f"{name} version {version}'s judged fit"
        return _load_checked(tags[JUDGED_URI_TAG], tags.get(JUDGED_DIGEST_TAG), what)

    def version_of_run(self, name: str, run_id: str) -> str | None:
        """The version of ``name`` registered from ``run_id``, if any."""
        try:
            found = self.client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
        except MlflowException:
            return None
        return min((v.version for v in found), key=int) if found else None

    def alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version ``name@alias`` points to, or None."""
        try:
            return self.client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None

    def version_exists(self, name: str, version: str) -> bool:
        try:
            self.client.get_model_version(name, version)
        except MlflowException:  # deleted, or its registered model was
            return False
        return True

    def input_columns(self, name: str, version: str) -> dict[str, str] | None:
        """Column -> MLflow type of version ``version``'s input signature (None: it has none)."""
        found = mlflow.models.get_model_info(f"models:/{name}/{version}").signature
        return None if found is None else {s["name"]: s["type"] for s in found.inputs.to_dict()}

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(name, version).tags)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def tag_version(self, name: str, version: str, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, str(value))


class Registry(ModelStore):
    """The model registry of a tracking store, for the jobs that only read it or move an
    alias (predict, rollback): no experiment is created, no run-logging code imported."""

    def __init__(self, uri: str):
        mlflow.set_tracking_uri(uri)  # read by MLflow's model loading
        self.client = MlflowClient(uri)

    @classmethod
    def open(cls, uri: str, *, timeout: float, key: str = "tracking.uri") -> Registry:
        """The registry at ``uri``; a user error naming ``key`` when it cannot be used."""
        probe.reachable(key, uri, timeout)
        registry = cls(uri)
        try:
            if uri.startswith("sqlite") and (path := sqlite.path_of(uri)) is not None:
                sqlite.refuse_empty(path)
            registry.client.search_registered_models(max_results=1)
        except (MlflowException, SQLAlchemyError, sqlite3.Error) as exc:  # unreachable, refused
            raise unreachable(key, uri, exc) from None
        return registry


def _digest_of(uri: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        return model_files.digest(Path(mlflow.artifacts.download_artifacts(uri, dst_path=tmp)))


def _load_checked(uri: str, expected: str | None, what: str, *, load: bool = True):
    """The model at ``uri``, loaded only if its files have digest ``expected`` and are in
    the skops format (``model_files.check``); ``UserError`` otherwise (None: not loaded)."""
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(mlflow.artifacts.download_artifacts(uri, dst_path=tmp))
        flavors = mlflow.models.Model.load(str(files / "MLmodel")).flavors
        model_files.check(files, flavors, expected=expected, trusted=SKOPS_TRUSTED_TYPES, what=what)
        return mlflow.sklearn.load_model(str(files)) if load else None
