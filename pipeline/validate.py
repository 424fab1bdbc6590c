"""Checks on the data before any store is touched; each problem names the column at fault.

All problems of a table are reported at once, in one ``UserError``; only faults that make
the other checks meaningless (no rows, no features, a repeated column, the target) stop at
once. Rows are named by ``Dataset.row_label``: ``line N`` of a CSV file, else ``row N``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pipeline.config import DataConfig, Missing, Task
from pipeline.data import Dataset, feature_kinds, numeric_ids
from pipeline.errors import UserError

log = logging.getLogger(__name__)

ID_WARNING = (
    "looks like an id (every value is a different whole number); "
    "list it in data.drop, or in data.numeric if it is a measurement"
)
Label = Callable[[int], str]  # a row's position in X -> where it is in the source


@dataclass(frozen=True)
class Problem:
    """One fault of the data, read ``<key>: <subject> in <source> <detail>``."""

    key: str
    subject: str  # e.g. "column 'b'"; empty for the table as a whole
    detail: str

    def text(self, where: str | None = None) -> str:
        """The problem as a message naming ``where``, or as a line of a list (``None``)."""
        if where is None:
            head = self.subject or "the table"
        else:
            head = f"{self.subject} in {where}" if self.subject else where
        return f"{self.key}: {head}{'' if self.detail[:1] in ':;,' else ' '}{self.detail}"


def check(
    dataset: Dataset, *, data: DataConfig, n_splits: int, test_size: float, shuffle: bool = True
) -> Dataset:
    """Raise one ``UserError`` naming every problem that keeps the data from being split,
    cross-validated and fitted; warn of numeric columns that look like ids.

    Returns the data set without its constant columns, which carry no information and
    are dropped with a warning naming them.
    """
    _check_shape(dataset)
    _check_target(dataset)
    X, label = dataset.X, dataset.row_label
    problems, nested = _nested(X)
    flat = X.drop(columns=nested)
    problems += _declared_numeric(flat, data.numeric, label)
    problems += _missing(flat, data.missing, label)
    filled = flat.loc[:, flat.notna().any()]  # a column without values is named above
    problems += _values(filled, data, label)
    problems += _leakage(filled, dataset.y)
    problems += _sizes(dataset, n_splits=n_splits, test_size=test_size, shuffle=shuffle)
    if problems:
        raise UserError(_message(problems, dataset.source))
    for column in numeric_ids(X, declared=data.numeric):
        log.warning("column %r of %s %s", column, dataset.source, ID_WARNING)
    constant = [c for c in X.columns if X[c].nunique(dropna=False) <= 1]
    if constant:
        where = dataset.source
        log.warning("dropping constant columns of %s: %s", where, ", ".join(map(repr, constant)))
        if len(constant) == X.shape[1]:
            raise UserError(f"data: every feature column of {where} is constant")
        return replace(dataset, X=X.drop(columns=constant))
    return dataset


def _message(problems: list[Problem], where: str) -> str:
    if len(problems) == 1:
        return problems[0].text(where)
    lines = [f"data: {len(problems)} problems in {where}:"]
    return "\n".join(lines + [f"  {p.text()}" for p in problems])


def _check_shape(dataset: Dataset) -> None:
    X, where = dataset.X, dataset.source
    if len(X) == 0:
        raise UserError(f"data: {where} has no rows")
    if X.shape[1] == 0:
        raise UserError(f"data: {where} has no feature columns")
    duplicated = X.columns[X.columns.duplicated()].unique().tolist()
    if duplicated:
        raise UserError(f"data: column {duplicated[0]!r} appears more than once in {where}")


def _check_target(dataset: Dataset) -> None:
    y, where = dataset.y, dataset.source
    name = f"data.target: column {y.name!r} in {where}"
    kind = nested_kind(y)
    if kind:
        raise UserError(f"{name} holds {kind} (a nested Parquet type); choose a plain column")
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


def nested_kind(values: pd.Series) -> str | None:
    """``"lists"`` or ``"structs"`` for a column of nested values (as Parquet holds), else None."""
    if not pd.api.types.is_object_dtype(values):
        return None
    for value in values:
        if isinstance(value, dict):
            return "structs"
        if isinstance(value, list | tuple | set | np.ndarray):
            return "lists"
    return None


def _nested(X: pd.DataFrame) -> tuple[list[Problem], list[str]]:
    found = {c: kind for c in X.columns if (kind := nested_kind(X[c]))}
    hint = "(a nested Parquet type); flatten it or list it in data.drop"
    problems = [Problem("data", f"column {c!r}", f"holds {k} {hint}") for c, k in found.items()]
    return problems, list(found)


def _declared_numeric(X: pd.DataFrame, declared: list[str], label: Label) -> list[Problem]:
    problems = []
    for column in declared:
        if column not in X.columns:
            continue
        values = X[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            continue
        bad = np.flatnonzero(values.notna() & pd.to_numeric(values, errors="coerce").isna())
        row = int(bad[0]) if len(bad) else 0
        detail = f"is declared numeric but holds {_plain(values.iloc[row])!r} ({label(row)})"
        problems.append(Problem("data.numeric", f"column {column!r}", detail))
    return problems


def _missing(X: pd.DataFrame, missing: Missing, label: Label) -> list[Problem]:
    absent = X.isna()
    counts = absent.sum()
    empty = counts[counts == len(X)].index
    problems = [Problem("data", f"column {c!r}", "has no values at all") for c in empty]
    counts = counts[(counts > 0) & (counts < len(X))]
    if len(counts) and missing == Missing.error:
        listed = ", ".join(
            f"{c!r} ({n}, first {label(int(np.argmax(absent[c].to_numpy())))})"
            for c, n in counts.items()
        )
        hint = "set data.missing=impute to fill them inside the model"
        problems.append(Problem("data", "missing values", f": {listed}; {hint}"))
    return problems


def _values(X: pd.DataFrame, data: DataConfig, label: Label) -> list[Problem]:
    numeric, categorical = feature_kinds(X)
    problems = []
    for column in numeric:
        values, subject = X[column], f"column {column!r}"
        if not pd.api.types.is_numeric_dtype(values):
            problems.append(Problem("data", subject, f"has unsupported dtype {values.dtype}"))
        elif n_inf := int(np.isinf(values.to_numpy(dtype=float, na_value=np.nan)).sum()):
            problems.append(Problem("data", subject, f"has {n_inf} infinite values"))
    for column in categorical:
        if column not in data.numeric:  # (declared numeric: named by _declared_numeric)
            problems += _category(X[column], data, label)
    return problems


def _category(values: pd.Series, data: DataConfig, label: Label) -> list[Problem]:
    column, present = values.name, values.dropna()
    if pd.api.types.is_bool_dtype(present):
        return []
    subject, n_distinct = f"column {column!r}", present.nunique()
    numbers = pd.to_numeric(values, errors="coerce")
    words = np.flatnonzero(values.notna() & numbers.isna())
    # Numbers and a few stray words, unless declared a category.
    if column not in data.categorical and len(words) and len(words) <= 0.1 * len(present):
        row = int(words[0])
        more = f" and {len(words) - 1} more" if len(words) > 1 else ""
        detail = (
            f"is numeric but for {_plain(values.iloc[row])!r} ({label(row)}){more}; "
            "fix those values, list the column in data.numeric to have them named, "
            f"or declare it a category with data.categorical=[{column}]"
        )
        return [Problem("data", subject, detail)]
    if n_distinct == len(present) and len(present) > data.max_categories:
        detail = (
            "looks like an id (every value is different); "
            "list it in data.drop or leave it out of data.features"
        )
        return [Problem("data", subject, detail)]
    if n_distinct > data.max_categories:
        detail = (
            f"has {n_distinct} categories, more than data.max_categories={data.max_categories}; "
            "list it in data.drop or raise the limit"
        )
        return [Problem("data", subject, detail)]
    return []


def _plain(value):
    """A numpy scalar as the Python value it holds, so messages read ``3``, not ``np.int64(3)``."""
    return value.item() if isinstance(value, np.generic) else value


def _leakage(X: pd.DataFrame, y: pd.Series) -> list[Problem]:
    target = y.reset_index(drop=True)
    numeric_target = pd.to_numeric(target, errors="coerce")
    problems = []
    for column in X.columns:
        values = X[column].reset_index(drop=True)
        if len(values) < 2:
            continue
        if pd.api.types.is_numeric_dtype(values) and numeric_target.notna().all():
            same = np.array_equal(values.to_numpy(dtype=float), numeric_target.to_numpy(float))
        else:
            same = values.astype(str).equals(target.astype(str))
        if same:
            detail = f"is a copy of the target {y.name!r} (leakage); drop it with data.drop"
            problems.append(Problem("data", f"column {column!r}", detail))
    return problems


def _sizes(dataset: Dataset, *, n_splits: int, test_size: float, shuffle: bool) -> list[Problem]:
    n_rows = len(dataset.X)
    n_test = math.ceil(test_size * n_rows)
    n_train = n_rows - n_test
    if n_test < 1 or n_train < n_splits:
        detail = (
            f"has {n_rows} rows; with split.test_size={test_size} that leaves "
            f"{n_train} for training, fewer than search.n_splits={n_splits}"
        )
        return [Problem("data", "", detail)]
    if dataset.task != Task.classification:
        return []
    counts = dataset.y.value_counts()
    if not shuffle:  # the holdout is the last rows, not stratified: each side needs every class
        sides = {"holdout": dataset.y.iloc[-n_test:], "training": dataset.y.iloc[:-n_test]}
        for side, rows in sides.items():
            absent = sorted(set(counts.index) - set(rows), key=str)
            if absent:
                subject = f"with split.shuffle=false the {side} rows"
                detail = f"hold no row of class {_plain(absent[0])!r}; shuffle, or reorder the rows"
                return [Problem("data.target", subject, detail)]
    if n_test < len(counts):
        detail = (
            f"has {n_rows} rows; a holdout of split.test_size={test_size} "
            f"({n_test} rows) cannot hold each of the {len(counts)} classes"
        )
        return [Problem("data", "", detail)]
    # The stratified holdout leaves about (1 - test_size) of each class for the folds.
    rare = counts[np.floor(counts * (1 - test_size)) < n_splits]
    if len(rare):
        label, count = _plain(rare.index[-1]), int(rare.iloc[-1])
        subject = f"class {label!r} of {dataset.y.name!r}"
        detail = (
            f"has {count} rows, too few for search.n_splits={n_splits} folds after the holdout "
            "split"
        )
        return [Problem("data.target", subject, detail)]
    return []
