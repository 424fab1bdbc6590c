"""Checks on the data before any store is touched; each failure names the column at fault."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipeline.data import Dataset, feature_kinds
from pipeline.errors import UserError


def check(dataset: Dataset, *, n_splits: int, test_size: float) -> None:
    """Raise ``UserError`` if the data cannot be split, cross-validated and fitted."""
    X, y, where = dataset.X, dataset.y, dataset.source
    if len(X) == 0:
        raise UserError(f"data: {where} has no rows")
    if X.shape[1] == 0:
        raise UserError(f"data: {where} has no feature columns")
    duplicated = X.columns[X.columns.duplicated()].unique().tolist()
    if duplicated:
        raise UserError(f"data: column {duplicated[0]!r} appears more than once in {where}")

    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        raise UserError(
            f"data.target: column {y.name!r} in {where} is not numeric (dtype {y.dtype}); "
            "this pipeline fits regression targets"
        )
    n_missing = int(y.isna().sum())
    if n_missing:
        raise UserError(f"data.target: column {y.name!r} in {where} has {n_missing} missing values")
    if not np.isfinite(y.to_numpy(dtype=float)).all():
        raise UserError(f"data.target: column {y.name!r} in {where} has infinite values")

    missing = X.isna().sum()
    missing = missing[missing > 0]
    if len(missing):
        listed = ", ".join(f"{c!r} ({n})" for c, n in missing.items())
        raise UserError(f"data: missing values in {where}: {listed}")
    numeric, _ = feature_kinds(X)
    for column in numeric:
        values = X[column]
        if not pd.api.types.is_numeric_dtype(values):
            raise UserError(
                f"data: column {column!r} in {where} has unsupported dtype {values.dtype}"
            )
        n_inf = int(np.isinf(values.to_numpy(dtype=float)).sum())
        if n_inf:
            raise UserError(f"data: column {column!r} in {where} has {n_inf} infinite values")

    n_test = math.ceil(test_size * len(X))
    n_train = len(X) - n_test
    if n_test < 1 or n_train < n_splits:
        raise UserError(
            f"data: {where} has {len(X)} rows; with split.test_size={test_size} that leaves "
            f"{n_train} for training, fewer than search.n_splits={n_splits}"
        )
