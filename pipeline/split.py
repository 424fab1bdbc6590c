"""Holdout split: the test rows are set aside before the search and used once, at the end."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split

from pipeline import grouping
from pipeline.config import SplitStrategy, Task
from pipeline.data import Dataset
from pipeline.errors import UserError


@dataclass(frozen=True)
class Split:
    """Training rows (searched and refitted on) and holdout rows (scored once)."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    # split.strategy=group: the training rows' groups, for the folds
    groups_train: pd.Series | None = None


def holdout(
    dataset: Dataset,
    *,
    test_size: float,
    random_state: int,
    shuffle: bool,
    strategy: SplitStrategy = SplitStrategy.random,
    gap: int = 0,
) -> Split:
    """Split ``dataset`` into training and holdout rows, reproducibly.

    Classification holdouts are stratified (when shuffled), so each class keeps its share.
    With ``strategy=group`` whole groups go to the holdout (see ``pipeline.grouping``); with
    ``strategy=time`` (rows in time order) the holdout is the last rows, and the ``gap``
    rows before them are left out of training.
    """
    if strategy == SplitStrategy.group:
        return _by_group(dataset, test_size=test_size, random_state=random_state)
    if strategy == SplitStrategy.time:
        n_test = math.ceil(test_size * len(dataset.X))
        X, y, end = dataset.X, dataset.y, len(dataset.X) - n_test
        if end - gap < 1:
            raise UserError(
                f"split.gap={gap}: of {len(X)} rows the holdout takes the last {n_test} "
                "(split.test_size) and the gap the rest; nothing is left for training"
            )
        return Split(X.iloc[: end - gap], X.iloc[end:], y.iloc[: end - gap], y.iloc[end:])
    stratify = dataset.y if dataset.task == Task.classification and shuffle else None
    X_train, X_test, y_train, y_test = train_test_split(
        dataset.X,
        dataset.y,
        test_size=test_size,
        random_state=random_state,
        shuffle=shuffle,
        stratify=stratify,
    )
    return Split(X_train, X_test, y_train, y_test)


def _by_group(dataset: Dataset, *, test_size: float, random_state: int) -> Split:
    if dataset.groups is None:
        raise ValueError("split.strategy=group needs a data set with groups")
    train, test = grouping.holdout_rows(
        dataset.groups, test_size=test_size, random_state=random_state
    )
    X, y = dataset.X, dataset.y
    if dataset.task == Task.classification:
        grouping.check_classes(y, {"the training rows": y.iloc[train], "the holdout": y.iloc[test]})
    groups = dataset.groups.iloc[train].reset_index(drop=True)
    return Split(X.iloc[train], X.iloc[test], y.iloc[train], y.iloc[test], groups)
