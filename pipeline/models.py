"""The estimator factory: where a penalty and an alpha become a scikit-learn Pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipeline.config import Penalty, Task

_L1_SHARE = {Penalty.l1: 1.0, Penalty.l2: 0.0}


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
    task: Task = Task.regression,
    numeric: Sequence[str],
    categorical: Sequence[str] = (),
    impute: bool = False,
    max_iter: int = 10_000,
    tol: float = 1e-4,
) -> Pipeline:
    """A Pipeline that standardizes numbers, one-hot encodes categories, then fits the model.

    Regression: Lasso (l1), Ridge (l2), ElasticNet. Classification: LogisticRegression with
    ``C = 1/alpha`` and the penalty as ``l1_ratio`` (0 = L2, 1 = L1), as scikit-learn 1.8+
    wants it. ``candidate=None`` gives the unpenalized baseline: least squares, or for
    classification a majority-class dummy. Preprocessing is part of the pipeline, so in
    cross-validation it is fitted on the training folds only.
    """
    model = make_model(candidate, task=task, max_iter=max_iter, tol=tol)
    return Pipeline([("prep", make_preprocessor(numeric, categorical, impute)), ("model", model)])


def make_model(candidate: Candidate | None, *, task: Task, max_iter: int, tol: float):
    """The pipeline's last step alone: the unfitted linear model for ``candidate``."""
    if task == Task.classification:
        return _classifier(candidate, max_iter=max_iter, tol=tol)
    return _regressor(candidate, max_iter=max_iter, tol=tol)


def _regressor(candidate: Candidate | None, *, max_iter: int, tol: float):
    if candidate is None:
        return LinearRegression()
    if candidate.penalty == Penalty.l1:
        return Lasso(alpha=candidate.alpha, max_iter=max_iter, tol=tol)
    if candidate.penalty == Penalty.l2:
        return Ridge(alpha=candidate.alpha)
    return ElasticNet(
        alpha=candidate.alpha, l1_ratio=_l1_ratio(candidate), max_iter=max_iter, tol=tol
    )


def _classifier(candidate: Candidate | None, *, max_iter: int, tol: float):
    if candidate is None:
        return DummyClassifier(strategy="most_frequent")
    l1_ratio = l1_share(candidate)
    return LogisticRegression(
        C=logistic_C(candidate),
        l1_ratio=l1_ratio,
        solver="lbfgs" if l1_ratio == 0 else "saga",
        max_iter=max_iter,
        tol=tol,
        # saga visits the rows in a random order: seeded, two runs of a study fit the same
        # models (unseeded, multiclass CV scores differed at the 5th digit between runs).
        random_state=0,
    )


def _l1_ratio(candidate: Candidate) -> float:
    if candidate.l1_ratio is None:
        raise ValueError("an elasticnet candidate needs an l1_ratio")
    return candidate.l1_ratio


# -- the same penalties as arguments of the fast paths' solvers (pipeline.folds) -----------


def l1_share(candidate: Candidate) -> float:
    """The L1 part of the penalty: 1 for l1, 0 for l2, ``l1_ratio`` for elasticnet."""
    share = _L1_SHARE.get(candidate.penalty)
    return _l1_ratio(candidate) if share is None else share


def logistic_C(candidate: Candidate) -> float:
    """LogisticRegression's ``C``: the inverse of ``alpha``."""
    return 1.0 / candidate.alpha


def ridge_penalty(candidate: Candidate) -> float:
    """Ridge's ``lambda`` in (X'X + lambda I) w = X'y, on the centered training rows."""
    return candidate.alpha


def enet_penalties(candidate: Candidate, n_samples: int) -> tuple[float, float]:
    """``(l1_reg, l2_reg)`` with which 1/2 ||y - Xw||^2 + l1_reg |w|_1 + l2_reg/2 ||w||^2,
    over ``n_samples`` centered rows, is ``n_samples`` times Lasso's / ElasticNet's objective."""
    share = l1_share(candidate)
    return candidate.alpha * share * n_samples, candidate.alpha * (1.0 - share) * n_samples


def logistic_penalties(candidate: Candidate) -> tuple[float, float]:
    """``(l1_reg, l2_reg)`` with which sum(log loss) + l1_reg |w|_1 + l2_reg/2 ||w||^2 is
    LogisticRegression(C=1/alpha, l1_ratio=...)'s objective divided by ``C``."""
    share = l1_share(candidate)
    return candidate.alpha * share, candidate.alpha * (1.0 - share)


def alpha_at(l1_reg: float, candidate: Candidate, n_samples: int = 1) -> float:
    """The inverse of :func:`enet_penalties` (``n_samples`` = 1: of :func:`logistic_penalties`):
    the alpha whose L1 weight, for ``candidate``'s penalty, is ``l1_reg``."""
    return l1_reg / (n_samples * max(l1_share(candidate), 1e-3))


def make_preprocessor(
    numeric: Sequence[str], categorical: Sequence[str] = (), impute: bool = False
):
    """The pipeline's first step: a StandardScaler, or with categories or imputation a
    ColumnTransformer that also imputes and one-hot encodes."""
    if not categorical and not impute:
        return StandardScaler()
    numbers = (
        make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        if impute
        else (StandardScaler())
    )
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    categories = (
        make_pipeline(SimpleImputer(strategy="most_frequent"), encoder) if impute else encoder
    )
    return ColumnTransformer(
        [("num", numbers, list(numeric)), ("cat", categories, list(categorical))],
        verbose_feature_names_out=False,
    )
