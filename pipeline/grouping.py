"""Grouped rows (``split.strategy=group``): several rows per customer, patient or store.

Rows of one group are alike, so a model scored on rows whose group it was trained on is
scored too kindly. Here the holdout (``GroupShuffleSplit``: ``split.test_size`` is a share
of the groups) and every cross-validation fold (``GroupKFold``, for classification
``StratifiedGroupKFold``, both shuffled with ``search.random_state``) keep each group on
one side. The group column (``data.group_column``) is never a feature.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, GroupShuffleSplit, StratifiedGroupKFold

from pipeline.errors import UserError

if TYPE_CHECKING:
    from pipeline.data import Dataset

KEY = "data.group_column"


def check(dataset: Dataset, *, n_splits: int, test_size: float) -> None:
    """One line naming the column when its groups cannot make a holdout and the folds."""
    groups = dataset.groups
    if groups is None:
        return
    name = groups.name
    missing = np.flatnonzero(groups.isna().to_numpy())
    if len(missing):
        where = dataset.row_label(int(missing[0]))
        raise UserError(
            f"{KEY}: column {name!r} of {dataset.source} has {len(missing)} missing "
            f"value(s), first at {where}; every row needs a group"
        )
    n_groups = groups.nunique()
    if n_groups < 2:
        raise UserError(
            f"{KEY}: column {name!r} of {dataset.source} has a single group "
            f"{groups.iloc[0]!r}; a group split needs several"
        )
    n_test = math.ceil(test_size * n_groups)
    if n_groups - n_test < n_splits:
        raise UserError(
            f"{KEY}: column {name!r} of {dataset.source} has {n_groups} groups; the holdout "
            f"takes {n_test} (split.test_size={test_size}) and leaves {n_groups - n_test}, "
            f"fewer than search.n_splits={n_splits} folds need"
        )


def holdout_rows(
    groups: pd.Series, *, test_size: float, random_state: int
) -> tuple[np.ndarray, np.ndarray]:
    """Training and holdout row positions, no group on both sides."""
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=random_state)
    return next(splitter.split(np.zeros((len(groups), 1)), groups=groups))


IN_FEW_GROUPS = "its rows are in too few groups; change split.random_state or search.n_splits"


def check_classes(
    y: pd.Series, parts: dict[str, pd.Series], *, key: str = KEY, cause: str = IN_FEW_GROUPS
) -> None:
    """Every class of ``y`` has rows in each of ``parts`` (the holdout, each fold's
    training rows): a model cannot score a class it never saw, nor a metric one absent."""
    classes = pd.unique(y)
    for where, part in parts.items():
        absent = [c for c in classes if c not in set(part)]
        if absent:
            raise UserError(
                f"{key}: {where} hold(s) no row of class {absent[0]!r} of {y.name!r}; {cause}"
            )


def folds(
    y: pd.Series, groups: pd.Series, *, n_splits: int, random_state: int, classify: bool
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The cross-validation folds, no group on both sides of any; stratified by class for
    classification."""
    kind = StratifiedGroupKFold if classify else GroupKFold
    splitter = kind(n_splits=n_splits, shuffle=True, random_state=random_state)
    out = tuple(splitter.split(np.zeros((len(y), 1)), y, groups))
    if classify:
        check_classes(y, {f"fold {i}'s training rows": y.iloc[t] for i, (t, _) in enumerate(out)})
    return out
