"""One fold's preprocessed arrays, built once per study, and its models for any candidate.

Used wherever the sums of ``pipeline.moments`` do not apply (categories, imputation, wide
data, classification). Ridge: one eigendecomposition (tall) or kernel eigendecomposition
(wide) per fold. Lasso and ElasticNet: coordinate descent on the fold's Gram matrix (tall)
or down a short path of alphas from the nearest solution on the fold (wide), as LassoCV
does. Logistic regression: ``pipeline.newton`` for binary tall data, otherwise
scikit-learn's solvers warm-started along a path, as LogisticRegressionCV does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from pipeline.config import Penalty, Task
from pipeline.gram import Gram, enet_rows
from pipeline.models import (
    Candidate,
    alpha_at,
    enet_penalties,
    l1_share,
    logistic_penalties,
    make_preprocessor,
    ridge_penalty,
)
from pipeline.newton import Point, newton_logistic
from pipeline.scoring import fitted

if TYPE_CHECKING:
    from pipeline.folds import FastCV

# Binary logistic regression uses the Newton method up to this many features (a p x p
# Hessian per step); wider data keeps scikit-learn's solvers.
NEWTON_MAX_FEATURES = 2_000
# With the L2 penalty alone lbfgs needs no Hessian: faster from a few hundred features on.
NEWTON_MAX_FEATURES_L2 = 200


def path(start: float, end: float, *, per_decade: int) -> list[float]:
    """Alphas from just after ``start`` down to ``end``, geometric, at most 30 steps."""
    if start <= end:
        return [end]
    steps = min(30, max(1, math.ceil(per_decade * math.log10(start / end))))
    alphas = list(np.geomspace(start, end, steps + 1)[1:])
    alphas[-1] = end
    return alphas


@dataclass
class ArrayFold:
    """A fold's training (and validation) rows, preprocessed once, and its solved models."""

    prep: object
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    solved: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, cv: FastCV, train: np.ndarray, test: np.ndarray | None) -> ArrayFold:
        """Fit the fold's preprocessing on its training rows and transform its rows."""
        prep = make_preprocessor(cv.numeric, cv.categorical, cv.impute)
        X_train = np.ascontiguousarray(prep.fit_transform(cv.X.iloc[train]), dtype=np.float64)
        y_train = cv.y.iloc[train].to_numpy()
        if test is None:
            return cls(prep, X_train, y_train, None, None)
        X_test = np.ascontiguousarray(prep.transform(cv.X.iloc[test]), dtype=np.float64)
        return cls(prep, X_train, y_train, X_test, cv.y.iloc[test].to_numpy())

    def fit(self, cv: FastCV, candidate: Candidate):
        """The fold's fitted model for ``candidate`` and whether it converged."""
        n, p = self.X_train.shape
        if cv.task == Task.regression:
            if candidate.penalty == Penalty.l2:
                return self._ridge(cv, candidate), True
            return self._enet_gram(cv, candidate) if n > p else self._enet_path(cv, candidate)
        limit = NEWTON_MAX_FEATURES if l1_share(candidate) > 0 else NEWTON_MAX_FEATURES_L2
        if n > p and p <= limit and len(self.classes()) == 2:
            return self._logistic_newton(cv, candidate)
        return self._logistic(cv, candidate)

    def classes(self) -> np.ndarray:
        """The training rows' classes, sorted."""
        if "classes" not in self.cache:
            self.cache["classes"] = np.unique(self.y_train)
        return self.cache["classes"]

    # -- logistic regression ------------------------------------------------------------------

    def _logistic_newton(self, cv: FastCV, candidate: Candidate):
        """Binary logistic regression by proximal Newton, from the nearest solution here."""
        classes = self.classes()
        target = (self.y_train == classes[1]).astype(np.float64)
        start = self._nearest(candidate, any_penalty=True)
        if start is None:
            share = float(target.mean())
            point = Point(np.zeros(self.X_train.shape[1]), math.log(share / (1 - share)))
        elif isinstance(start[1], Point):
            point = start[1]
        else:  # solved by lbfgs (L2 with many features)
            coef, intercept = start[1]
            point = Point(np.ravel(coef), float(np.ravel(intercept)[0]))
        l1_reg, l2_reg = logistic_penalties(candidate)
        result = newton_logistic(
            self.X_train,
            target,
            l1_reg,
            l2_reg,
            point,
            tol=cv.tol,
            max_iter=cv.max_iter,
            hessian=self.cache.get("hessian"),
        )
        self.cache["hessian"] = result.hessian
        self._remember(candidate, result.point)
        coef, intercept = result.point.coef, result.point.intercept
        model = fitted(
            cv.model(candidate),
            coef[None, :],
            np.array([intercept]),
            len(coef),
            classes_=classes,
            n_iter_=np.array([result.n_iter], dtype=np.int32),
        )
        return model, result.converged

    def _logistic(self, cv: FastCV, candidate: Candidate):
        """Logistic regression warm-started from the nearest solved alpha on this fold.

        With an L1 part (saga), a cold start at a weak penalty can take minutes; so, as
        LogisticRegressionCV does, the solution is followed down a path of alphas, one per
        decade, from the nearest solved alpha or from the smallest alpha whose solution is
        all zeros.
        """
        ratio = l1_share(candidate)
        start = self._nearest(candidate, above=ratio > 0)
        alphas = [candidate.alpha]
        if ratio > 0:
            top = self._zero_alpha(candidate) if start is None else start[0]
            alphas = path(top, candidate.alpha, per_decade=1)
        coefs = None if start is None else start[1]
        model = None
        for alpha in alphas:
            model = cv.model(replace(candidate, alpha=alpha))
            if coefs is not None:
                model.set_params(warm_start=True)
                model.coef_, model.intercept_ = (np.array(a, copy=True) for a in coefs)
            model.fit(self.X_train, self.y_train)
            coefs = (model.coef_, model.intercept_)
        model.set_params(warm_start=False)
        self._remember(candidate, coefs)
        n_iter = np.asarray(model.n_iter_)
        return model, bool(np.all(n_iter < cv.max_iter))

    def _zero_alpha(self, candidate: Candidate) -> float:
        """The alpha above which the L1 part makes every coefficient zero."""
        onehot = (self.y_train[:, None] == self.classes()[None, :]).astype(float)
        gradient = self.X_train.T @ (onehot - onehot.mean(axis=0))
        return alpha_at(float(np.max(np.abs(gradient))), candidate)

    # -- warm starts ---------------------------------------------------------------------------

    def _remember(self, candidate: Candidate, coefs) -> None:
        self.solved[(candidate.penalty, candidate.alpha, candidate.l1_ratio)] = coefs

    def _nearest(self, candidate: Candidate, *, above: bool = False, any_penalty: bool = False):
        """(alpha, coefficients) solved for the alpha (and l1_ratio) nearest ``candidate``'s;
        with ``above``, only stronger penalties (an L1 path is followed downwards); with
        ``any_penalty``, a solution for another penalty type may be the nearest."""
        best, distance = None, math.inf
        wanted = l1_share(candidate)
        for (penalty, alpha, ratio), coefs in self.solved.items():
            if (penalty != candidate.penalty and not any_penalty) or (
                above and alpha < candidate.alpha
            ):
                continue
            d = abs(math.log(alpha / candidate.alpha))
            d += 10 * abs(l1_share(Candidate(penalty, alpha, ratio)) - wanted)
            if d < distance:
                best, distance = (alpha, coefs), d
        return best

    # -- regression ----------------------------------------------------------------------------

    def _centered(self) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        """Column means, target mean, and the centered rows (Fortran order, for CD) and target."""
        if "centered" not in self.cache:
            mean = self.X_train.mean(axis=0)
            y_mean = float(np.mean(self.y_train))
            self.cache["centered"] = (
                mean,
                y_mean,
                np.asfortranarray(self.X_train - mean),
                np.ascontiguousarray(self.y_train - y_mean, dtype=np.float64),
            )
        return self.cache["centered"]

    def _gram(self) -> Gram:
        if "gram" not in self.cache:
            _, _, centered, y_centered = self._centered()
            self.cache["gram"] = Gram(
                np.ascontiguousarray(centered.T @ centered),
                centered.T @ y_centered,
                float(y_centered @ y_centered),
                len(centered),
            )
        return self.cache["gram"]

    def _ridge(self, cv: FastCV, candidate: Candidate):
        n, p = self.X_train.shape
        mean, y_mean, centered, y_centered = self._centered()
        if n > p:
            coef = self._gram().ridge(ridge_penalty(candidate))
        else:
            # Wide: (X'X + a I)^-1 X'y = X'(XX' + a I)^-1 y, from one n x n eigendecomposition.
            if "kernel" not in self.cache:
                values, vectors = np.linalg.eigh(centered @ centered.T)
                self.cache["kernel"] = (
                    np.clip(values, 0.0, None),
                    centered.T @ vectors,
                    vectors.T @ y_centered,
                )
            values, back, projected = self.cache["kernel"]
            coef = back @ (projected / (values + ridge_penalty(candidate)))
        intercept = y_mean - float(mean @ coef)
        return fitted(cv.model(candidate), coef, intercept, p, n_iter_=None)

    def _enet_gram(self, cv: FastCV, candidate: Candidate):
        """Tall: coordinate descent on the fold's Gram matrix, with its centered rows."""
        mean, y_mean, centered, y_centered = self._centered()
        gram = self._gram()
        solved = enet_rows(
            centered,
            y_centered,
            [enet_penalties(candidate, gram.n)],
            gram=(gram.Q, gram.q),
            max_iter=cv.max_iter,
            tol=cv.tol,
        )[-1]
        return self._linear(cv, candidate, solved, mean, y_mean)

    def _enet_path(self, cv: FastCV, candidate: Candidate):
        """Wide data: coordinate descent down a short path of alphas, as LassoCV does.

        From the nearest alpha solved on this fold (or from the smallest alpha whose
        solution is all zeros), a few geometric steps reach ``candidate.alpha``, each step
        starting from the previous solution: much faster than a cold start at a small
        alpha, where coordinate descent on p >> n data crawls.
        """
        mean, y_mean, centered, y_centered = self._centered()
        start = self._nearest(candidate, above=True)
        if start is None:
            top = alpha_at(float(np.max(np.abs(centered.T @ y_centered))), candidate, len(centered))
            start = (max(top, candidate.alpha), np.zeros(centered.shape[1]))
        alpha0, coef0 = start
        penalties = [
            enet_penalties(replace(candidate, alpha=alpha), len(centered))
            for alpha in path(alpha0, candidate.alpha, per_decade=4)
        ]
        solved = enet_rows(
            centered, y_centered, penalties, coef_init=coef0, max_iter=cv.max_iter, tol=cv.tol
        )[-1]
        self._remember(candidate, solved.coef)
        return self._linear(cv, candidate, solved, mean, y_mean)

    def _linear(self, cv: FastCV, candidate: Candidate, solved, mean, y_mean: float):
        """The fitted regression model of a coordinate-descent solution, and convergence."""
        intercept = y_mean - float(mean @ solved.coef)
        n = self.X_train.shape[0]
        model = fitted(
            cv.model(candidate),
            solved.coef,
            intercept,
            len(solved.coef),
            n_iter_=solved.n_iter,
            dual_gap_=solved.gap / n,
        )
        return model, solved.n_iter < cv.max_iter
