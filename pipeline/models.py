"""The estimator factory: where a penalty and an alpha become a scikit-learn Pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sklearn.compose import ColumnTransformer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipeline.config import Penalty


@dataclass(frozen=True)
class Candidate:
    """One point of the search space: a penalty, its strength, and (elasticnet) the L1 share."""

    penalty: Penalty
    alpha: float
    l1_ratio: float | None = None

    @property
    def label(self) -> str:
        """A short name for lists of runs, e.g. ``l1 α=0.0123`` or ``elasticnet α=0.41 r=0.7``."""
        text = f"{self.penalty.value} α={self.alpha:.3g}"
        return text if self.l1_ratio is None else f"{text} r={self.l1_ratio:.2g}"

    def params(self) -> dict[str, str | float]:
        """The candidate as MLflow params (``l1_ratio`` only for elasticnet)."""
        out: dict[str, str | float] = {"penalty": self.penalty.value, "alpha": self.alpha}
        if self.l1_ratio is not None:
            out["l1_ratio"] = self.l1_ratio
        return out


def make_estimator(
    candidate: Candidate | None,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str] = (),
    max_iter: int = 10_000,
    tol: float = 1e-4,
) -> Pipeline:
    """A Pipeline that standardizes numbers, one-hot encodes categories, then fits the model.

    ``candidate=None`` gives unpenalized least squares. Preprocessing is part of the
    pipeline, so in cross-validation it is fitted on the training folds only.
    """
    if candidate is None:
        model = LinearRegression()
    elif candidate.penalty == Penalty.l1:
        model = Lasso(alpha=candidate.alpha, max_iter=max_iter, tol=tol)
    elif candidate.penalty == Penalty.l2:
        model = Ridge(alpha=candidate.alpha)
    elif candidate.penalty == Penalty.elasticnet:
        if candidate.l1_ratio is None:
            raise ValueError("an elasticnet candidate needs an l1_ratio")
        model = ElasticNet(
            alpha=candidate.alpha, l1_ratio=candidate.l1_ratio, max_iter=max_iter, tol=tol
        )
    else:
        raise ValueError(f"unknown penalty {candidate.penalty!r}")
    return Pipeline([("prep", _preprocessor(numeric, categorical)), ("model", model)])


def _preprocessor(numeric: Sequence[str], categorical: Sequence[str]):
    if not categorical:
        return StandardScaler()
    return ColumnTransformer(
        [
            ("num", StandardScaler(), list(numeric)),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(categorical)),
        ],
        verbose_feature_names_out=False,
    )
