"""Columns that say how rows relate, not what they measure: ``data.group_column`` (several
rows per customer, patient or store) and ``data.time_column`` (rows in time order). Both
are taken out of the features here; the rows are then put in time order, so that the
holdout is the latest rows and the folds chain forward (``split.strategy=time``)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.model_selection import TimeSeriesSplit

from pipeline import grouping
from pipeline.errors import UserError

if TYPE_CHECKING:
    from pipeline.data import Dataset


def split_off(dataset: Dataset, *, group_column: str | None, time_column: str | None) -> Dataset:
    """``dataset`` without its group and time columns as features, kept as its groups and
    times; with times, its rows sorted by time (stable: rows of the same time keep their
    order), each still named by its line in the source."""
    if group_column:
        dataset = replace(dataset, **_take(dataset, "data.group_column", group_column, "groups"))
    if time_column:
        dataset = replace(dataset, **_take(dataset, "data.time_column", time_column, "times"))
        dataset = _in_time_order(dataset)
    return dataset


def _take(dataset: Dataset, key: str, column: str, field: str) -> dict:
    if column == dataset.y.name:
        raise UserError(f"{key}: column {column!r} is the target")
    if column not in dataset.X.columns:
        raise UserError(f"{key}: column {column!r} not found in {dataset.source}")
    values = dataset.X[column].reset_index(drop=True)
    return {"X": dataset.X.drop(columns=[column]), field: values}


def _in_time_order(dataset: Dataset) -> Dataset:
    times = _as_times(dataset, dataset.times)
    order = np.argsort(times.to_numpy(), kind="stable")
    positions = np.arange(len(times)) if dataset.positions is None else dataset.positions
    return replace(
        dataset,
        X=dataset.X.iloc[order].reset_index(drop=True),
        y=_reorder(dataset.y, order),
        groups=_reorder(dataset.groups, order),
        times=_reorder(times, order),
        positions=positions[order],
    )


def _reorder(values: pd.Series | None, order: np.ndarray) -> pd.Series | None:
    return None if values is None else values.iloc[order].reset_index(drop=True)


def _as_times(dataset: Dataset, values: pd.Series) -> pd.Series:
    """Numbers as they are; anything else parsed as dates. A missing or unparseable value
    is one line naming the column, the value and its line."""
    name = values.name
    missing = np.flatnonzero(values.isna().to_numpy())
    if len(missing):
        where = dataset.row_label(int(missing[0]))
        raise UserError(
            f"data.time_column: column {name!r} of {dataset.source} has {len(missing)} "
            f"missing value(s), first at {where}; every row needs a time"
        )
    if pd.api.types.is_bool_dtype(values):
        raise UserError(f"data.time_column: column {name!r} holds true/false, not times")
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return values
    try:
        parsed = pd.to_datetime(values.astype(str), errors="coerce", format="mixed")
    except (ValueError, TypeError) as exc:  # e.g. dates with and without a time zone
        raise UserError(
            f"data.time_column: column {name!r} cannot be read as dates: {exc}"
        ) from None
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        first = int(bad[0])
        raise UserError(
            f"data.time_column: column {name!r} of {dataset.source} has {len(bad)} value(s) "
            f"that are not dates, first {values.iloc[first]!r} ({dataset.row_label(first)})"
        )
    return parsed.rename(name)


def time_folds(
    y: pd.Series, *, n_splits: int, gap: int, classify: bool
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Forward-chaining folds on rows in time order (``TimeSeriesSplit``): each fold trains
    on rows before its validation rows, ``gap`` rows apart; the first rows are never
    validated on."""
    n_test = len(y) // (n_splits + 1)
    first = len(y) - n_splits * n_test - gap  # the first fold's training rows
    if n_test < 1 or first < 1:
        raise UserError(
            f"split.gap={gap}: {len(y)} training rows in search.n_splits={n_splits} "
            f"forward-chaining folds leave {max(first, 0)} for the first fold's training"
        )
    splitter = TimeSeriesSplit(n_splits=n_splits, gap=gap)
    out = tuple(splitter.split(np.zeros((len(y), 1))))
    if classify:
        grouping.check_classes(
            y,
            {f"fold {i}'s training rows": y.iloc[t] for i, (t, _) in enumerate(out)},
            key="split.strategy=time",
            cause="the earliest rows lack it; reduce search.n_splits or split.gap",
        )
    return out
