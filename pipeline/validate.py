"""Checks on the data before any store is touched; each failure names the column at fault."""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
import pandas as pd

from pipeline.config import DataConfig, Missing, Task
from pipeline.data import Dataset, feature_kinds
from pipeline.errors import UserError

log = logging.getLogger(__name__)


def check(
    dataset: Dataset, *, data: DataConfig, n_splits: int, test_size: float, shuffle: bool = True
) -> Dataset:
    """Raise ``UserError`` if the data cannot be split, cross-validated and fitted.

    Returns the data set without its constant columns, which carry no information and
    are dropped with a warning naming them.
    """
    X, y, where = dataset.X, dataset.y, dataset.source
    if len(X) == 0:
        raise UserError(f"data: {where} has no rows")
    if X.shape[1] == 0:
        raise UserError(f"data: {where} has no feature columns")
    duplicated = X.columns[X.columns.duplicated()].unique().tolist()
    if duplicated:
        raise UserError(f"data: column {duplicated[0]!r} appears more than once in {where}")

    _check_target(dataset)
    _check_declared_numeric(X, data.numeric, where)
    _check_missing(X, data.missing, where)
    _check_values(X, where, max_categories=data.max_categories)
    _check_leakage(X, y, where)
    _check_sizes(dataset, n_splits=n_splits, test_size=test_size, shuffle=shuffle)

    constant = [c for c in X.columns if X[c].nunique(dropna=False) <= 1]
    if constant:
        log.warning("dropping constant columns of %s: %s", where, ", ".join(map(repr, constant)))
        if len(constant) == X.shape[1]:
            raise UserError(f"data: every feature column of {where} is constant")
        return replace(dataset, X=X.drop(columns=constant))
    return dataset


def _check_target(dataset: Dataset) -> None:
    y, where = dataset.y, dataset.source
    name = f"data.target: column {y.name!r} in {where}"
    if dataset.task == Task.regression:
        if pd.api.types.is_bool_dtype(y):
            raise UserError(f"{name} is boolean; set data.task=classification (or auto)")
        if not pd.api.types.is_numeric_dtype(y):
            text = y[pd.to_numeric(y, errors="coerce").isna() & y.notna()]
            example = _plain(text.iloc[0] if len(text) else y.iloc[0])
            raise UserError(
                f"{name} is not numeric (value {example!r}); "
                "set data.task=classification if it holds class labels"
            )
        if not np.isfinite(y.to_numpy(dtype=float)).all():
            raise UserError(f"{name} has infinite values")
        return
    counts = y.value_counts()
    if len(counts) < 2:
        label = _plain(counts.index[0])
        raise UserError(f"{name} has a single class {label!r}; nothing to classify")


def _check_declared_numeric(X: pd.DataFrame, declared: list[str], where: str) -> None:
    for column in declared:
        if column not in X.columns:
            continue
        values = X[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            continue
        bad = values[values.notna() & pd.to_numeric(values, errors="coerce").isna()]
        example = bad.iloc[0] if len(bad) else values.iloc[0]
        raise UserError(
            f"data.numeric: column {column!r} in {where} is declared numeric but holds "
            f"{example!r} (row {bad.index[0] if len(bad) else 0})"
        )


def _check_missing(X: pd.DataFrame, missing: Missing, where: str) -> None:
    counts = X.isna().sum()
    empty = counts[counts == len(X)]
    if len(empty):
        raise UserError(f"data: column {empty.index[0]!r} in {where} has no values at all")
    counts = counts[counts > 0]
    if len(counts) and missing == Missing.error:
        listed = ", ".join(f"{c!r} ({n})" for c, n in counts.items())
        raise UserError(
            f"data: missing values in {where}: {listed}; "
            "set data.missing=impute to fill them inside the model"
        )


def _check_values(X: pd.DataFrame, where: str, *, max_categories: int) -> None:
    numeric, categorical = feature_kinds(X)
    for column in numeric:
        values = X[column]
        if not pd.api.types.is_numeric_dtype(values):
            raise UserError(
                f"data: column {column!r} in {where} has unsupported dtype {values.dtype}"
            )
        n_inf = int(np.isinf(values.to_numpy(dtype=float, na_value=np.nan)).sum())
        if n_inf:
            raise UserError(f"data: column {column!r} in {where} has {n_inf} infinite values")
    for column in categorical:
        values = X[column].dropna()
        n_distinct = values.nunique()
        if pd.api.types.is_bool_dtype(values):
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        if len(values) and 0.9 <= numbers.notna().mean() < 1:  # numbers and a few stray words
            row = values.index[numbers.isna()][0]
            raise UserError(
                f"data: column {column!r} in {where} is numeric but for {values[row]!r} "
                f"(row {row}) and {int(numbers.isna().sum()) - 1} more; fix those values, "
                f"or list the column in data.numeric to have them named"
            )
        if n_distinct == len(values) and len(values) > max_categories:
            raise UserError(
                f"data: column {column!r} in {where} looks like an id (every value is "
                "different); list it in data.drop or leave it out of data.features"
            )
        if n_distinct > max_categories:
            raise UserError(
                f"data: column {column!r} in {where} has {n_distinct} categories, more than "
                f"data.max_categories={max_categories}; list it in data.drop or raise the limit"
            )


def _plain(value):
    """A numpy scalar as the Python value it holds, so messages read ``3``, not ``np.int64(3)``."""
    return value.item() if isinstance(value, np.generic) else value


def _check_leakage(X: pd.DataFrame, y: pd.Series, where: str) -> None:
    target = y.reset_index(drop=True)
    numeric_target = pd.to_numeric(target, errors="coerce")
    for column in X.columns:
        values = X[column].reset_index(drop=True)
        if len(values) < 2:
            continue
        if pd.api.types.is_numeric_dtype(values) and numeric_target.notna().all():
            same = np.array_equal(values.to_numpy(dtype=float), numeric_target.to_numpy(float))
        else:
            same = values.astype(str).equals(target.astype(str))
        if same:
            raise UserError(
                f"data: column {column!r} in {where} is a copy of the target {y.name!r} "
                "(leakage); drop it with data.drop"
            )


def _check_sizes(dataset: Dataset, *, n_splits: int, test_size: float, shuffle: bool) -> None:
    n_rows, where = len(dataset.X), dataset.source
    n_test = math.ceil(test_size * n_rows)
    n_train = n_rows - n_test
    if n_test < 1 or n_train < n_splits:
        raise UserError(
            f"data: {where} has {n_rows} rows; with split.test_size={test_size} that leaves "
            f"{n_train} for training, fewer than search.n_splits={n_splits}"
        )
    if dataset.task != Task.classification:
        return
    counts = dataset.y.value_counts()
    n_classes = len(counts)
    if not shuffle:  # the holdout is the last rows, not stratified: each side needs every class
        for side, rows in (
            ("holdout", dataset.y.iloc[-n_test:]),
            ("training", dataset.y.iloc[:-n_test]),
        ):
            absent = sorted(set(counts.index) - set(rows), key=str)
            if absent:
                raise UserError(
                    f"data.target: with split.shuffle=false the {side} rows of {where} hold no "
                    f"row of class {_plain(absent[0])!r}; shuffle, or reorder the rows"
                )
    if n_test < n_classes:
        raise UserError(
            f"data: {where} has {n_rows} rows; a holdout of split.test_size={test_size} "
            f"({n_test} rows) cannot hold each of the {n_classes} classes"
        )
    # The stratified holdout leaves about (1 - test_size) of each class for the folds.
    rare = counts[np.floor(counts * (1 - test_size)) < n_splits]
    if len(rare):
        label, count = _plain(rare.index[-1]), int(rare.iloc[-1])
        raise UserError(
            f"data.target: class {label!r} of {dataset.y.name!r} in {where} has {count} rows, "
            f"too few for search.n_splits={n_splits} folds after the holdout split"
        )
