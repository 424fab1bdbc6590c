"""The study's rows as MLflow dataset inputs of its parent run (public ``mlflow.data`` API)."""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import DatasetInput, InputTag
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from pipeline import data

if TYPE_CHECKING:
    from pipeline.data import Dataset


def dataset_input(
    dataset: Dataset, rows: tuple[pd.DataFrame, pd.Series], context: str
) -> DatasetInput:
    """``rows`` of ``dataset`` as an MLflow dataset input, with its context tag.

    Its schema is MLflow's, inferred from :func:`schema_rows` (which MLflow infers the same
    schema from, in milliseconds instead of seconds); its profile counts every row.
    """
    X, y = rows
    frame = pd.concat([X, y], axis=1)
    with warnings.catch_warnings():
        # A local path matches two of MLflow's source types, which it warns about.
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways")
        # MLflow's hint that integer columns cannot hold missing values is about model
        # signatures (see trial_log.signature); this schema describes the data only.
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column")
        ds = mlflow.data.from_pandas(
            schema_rows(frame),
            source=dataset.source if "/" in dataset.source else None,
            targets=str(y.name),
            name=dataset.name,
            # Ours: MLflow's own digest trips over pandas 3's string columns.
            digest=data.digest(X, y),
        )
        profile = mlflow.data.from_pandas(frame, name=dataset.name, digest="-").profile
        entity = mlflow.entities.Dataset(**{**ds.to_dict(), "profile": json.dumps(profile)})
    return DatasetInput(entity, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])


def schema_rows(frame: pd.DataFrame, head: int = 10) -> pd.DataFrame:
    """The first ``head`` rows of ``frame`` and, for each column, its first missing and its
    first present value: MLflow infers a column's type from its dtype (or, for objects, from its
    values, which validation keeps to one kind) and its ``required`` flag from whether any
    value is missing, scanning every value in Python."""
    missing = frame.isna().to_numpy()
    rows = set(range(min(head, len(frame))))
    rows |= {int(missing[:, j].argmax()) for j in np.flatnonzero(missing.any(axis=0))}
    present = ~missing
    rows |= {int(present[:, j].argmax()) for j in np.flatnonzero(present.any(axis=0))}
    return frame.iloc[sorted(rows)]
