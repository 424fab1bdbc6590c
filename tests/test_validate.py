from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.data import Dataset
from pipeline.errors import UserError
from pipeline.validate import check


def _dataset(X: pd.DataFrame, y: pd.Series) -> Dataset:
    return Dataset(X, y, "t", "t.csv")


def _good(n: int = 20) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)}), pd.Series(
        rng.normal(size=n), name="y"
    )


def test_good_data_passes():
    check(_dataset(*_good()), n_splits=5, test_size=0.2)


def _nan_in_a(X, y):
    X.loc[3, "a"] = np.nan
    X.loc[4, "a"] = np.nan
    return X, y


def _inf_in_b(X, y):
    X.loc[0, "b"] = np.inf
    return X, y


def _text_target(X, y):
    return X, pd.Series(["a"] * len(X), name="y")


def _missing_target(X, y):
    y = y.copy()
    y.iloc[0] = np.nan
    return X, y


def _duplicate_columns(X, y):
    X = pd.concat([X, X[["a"]]], axis=1)
    return X, y


@pytest.mark.parametrize(
    ("breaker", "message"),
    [
        (_nan_in_a, r"missing values in t.csv: 'a' \(2\)"),
        (_inf_in_b, r"column 'b' in t.csv has 1 infinite values"),
        (_text_target, r"data.target: column 'y' in t.csv is not numeric"),
        (_missing_target, r"data.target: column 'y' in t.csv has 1 missing values"),
        (_duplicate_columns, r"column 'a' appears more than once"),
        (lambda X, y: (X.iloc[:0], y.iloc[:0]), r"t.csv has no rows"),
        (lambda X, y: (X.iloc[:, :0], y), r"t.csv has no feature columns"),
        (lambda X, y: (X.iloc[:5], y.iloc[:5]), r"has 5 rows; .* leaves 4 for training, fewer"),
    ],
)
def test_bad_data_names_the_fault(breaker, message):
    X, y = breaker(*_good())
    with pytest.raises(UserError, match=message):
        check(_dataset(X, y), n_splits=5, test_size=0.2)
