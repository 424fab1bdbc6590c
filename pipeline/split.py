"""Holdout split: the test rows are set aside before the search and used once, at the end."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split

from pipeline.config import Task
from pipeline.data import Dataset


@dataclass(frozen=True)
class Split:
    """Training rows (searched and refitted on) and holdout rows (scored once)."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def holdout(dataset: Dataset, *, test_size: float, random_state: int, shuffle: bool) -> Split:
    """Split ``dataset`` into training and holdout rows, reproducibly.

    Classification holdouts are stratified (when shuffled), so each class keeps its share.
    """
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
