"""Fast cross-validation: the work the folds share is done once per study, not per trial.

A candidate's scores are what ``cross_val_score`` of its estimator pipeline gives on the
study's folds (``tests/test_cv.py`` holds the two together); what changes is where the
work happens:

- Each fold's preprocessing is fitted once per study.
- Regression on tall data (more training rows than features), numbers only: each
  fold's standardized Gram matrix X'X and X'y come from sums over row chunks, without a
  standardized copy of the data. Lasso and ElasticNet run coordinate descent on the p x p
  Gram matrix, Ridge takes any alpha from one eigendecomposition, and every fold's
  predictions come from one matrix product with the raw rows.
- Otherwise each fold keeps its preprocessed arrays. Ridge: one eigendecomposition (tall)
  or SVD (wide) per fold. Lasso, ElasticNet and logistic regression start from the
  coefficients of the nearest alpha already solved on the same fold (a warm start, as
  scikit-learn's path-based CV tuners do); the result meets the same tolerance.
- Binary logistic regression on tall data: a proximal Newton method (as glmnet's), whose
  steps solve a p x p quadratic model by scikit-learn's Gram coordinate descent, warm-started
  from the nearest solution on the fold and reusing the fold's last Hessian while it still
  gives fast steps. It stops where lbfgs does, at a gradient (for L1, the subgradient nearest
  zero) of at most ``tol`` per training row, and always takes at least one Newton step.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning

# scikit-learn's own coordinate descent on a Gram matrix (what Lasso(precompute=True) runs);
# called directly because the Gram matrix here is built without the standardized rows.
from sklearn.linear_model import enet_path
from sklearn.linear_model._cd_fast import enet_coordinate_descent_gram
from sklearn.metrics import get_scorer
from sklearn.pipeline import Pipeline

from pipeline import interrupt
from pipeline.config import Penalty, Task
from pipeline.models import L1_RATIO, Candidate, make_estimator, make_model, make_preprocessor

# Rows per chunk when summing a Gram matrix: about 32 MB of float64 at a time.
CHUNK_VALUES = 4 * 1024 * 1024

# Binary logistic regression uses the Newton method up to this many features (a p x p
# Hessian per step); wider data keeps scikit-learn's solvers.
NEWTON_MAX_FEATURES = 2_000
# With the L2 penalty alone lbfgs needs no Hessian: faster from a few hundred features on.
NEWTON_MAX_FEATURES_L2 = 200
# Coordinate-descent sweeps per Newton step: the quadratic model need not be solved exactly.
NEWTON_INNER_SWEEPS = 200


@dataclass
class Scores:
    """One candidate's per-fold validation and training scores."""

    cv: list[float]
    train: list[float]
    converged: bool


# Called after each fold with the validation scores so far; may raise to stop the trial.
OnFold = Callable[[list[float]], None]


@dataclass
class _Gram:
    """The standardized, centered training rows of a fold, summarised: Q = X'X, q = X'y."""

    Q: np.ndarray
    q: np.ndarray
    yy: float
    n: int
    _eig: tuple[np.ndarray, np.ndarray] | None = None

    def enet(self, alpha: float, l1_ratio: float, *, max_iter: int, tol: float):
        """Coordinate descent as in ElasticNet/Lasso: 1/(2n)||y - Xw||^2 + penalty."""
        w = np.zeros(self.Q.shape[0])
        y_norm = np.array([math.sqrt(self.yy)])  # the solver only reads y'y
        w, gap, _, n_iter = enet_coordinate_descent_gram(
            w,
            alpha * l1_ratio * self.n,
            alpha * (1.0 - l1_ratio) * self.n,
            self.Q,
            self.q,
            y_norm,
            max_iter,
            tol,
            np.random.RandomState(0),  # unused: cyclic selection, as scikit-learn's default
            0,
            0,
            1,
        )
        return np.asarray(w), float(gap), int(n_iter)

    def ridge(self, alpha: float) -> np.ndarray:
        """Ridge's (X'X + alpha I) w = X'y from one eigendecomposition of X'X."""
        if self._eig is None:
            values, vectors = np.linalg.eigh(self.Q)
            self._eig = (np.clip(values, 0.0, None), vectors, vectors.T @ self.q)
        values, vectors, projected = self._eig
        return vectors @ (projected / (values + alpha))


def _scale(var: np.ndarray) -> np.ndarray:
    """StandardScaler's scale: the standard deviation, 1 where a column is constant."""
    scale = np.sqrt(var)
    scale[scale < 10 * np.finfo(float).eps] = 1.0
    return scale


def _fitted(model, coef, intercept, n_features: int, **attrs):
    """``model`` (an unfitted scikit-learn linear model) given coefficients solved here."""
    model.coef_ = coef
    model.intercept_ = intercept
    model.n_features_in_ = n_features
    for key, value in attrs.items():
        setattr(model, key, value)
    return model


class _Fixed(RegressorMixin, BaseEstimator):
    """Predictions already computed, for a scikit-learn scorer."""

    def __init__(self, values: np.ndarray | None = None):
        self.values = values

    def fit(self, X, y):  # pragma: no cover - never fitted, the scorer only predicts
        return self

    def predict(self, X) -> np.ndarray:
        return self.values


def _r2(ss: float, n: float, spread: float) -> float:
    return 1.0 - ss / spread if spread > 0 else (1.0 if ss == 0 else 0.0)


# The scorers computed from sums of squared residuals (tested against scikit-learn's).
_SQUARED_ERROR: dict[str, Callable[[float, float, float], float]] = {
    "neg_root_mean_squared_error": lambda ss, n, _: -math.sqrt(ss / n),
    "neg_mean_squared_error": lambda ss, n, _: -ss / n,
    "r2": _r2,
}


@dataclass
class FastCV:
    """Scores candidates on fixed folds; builds the refit on all training rows."""

    X: pd.DataFrame
    y: pd.Series
    folds: Sequence[tuple[np.ndarray, np.ndarray]]
    scoring: str
    task: Task
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    impute: bool
    max_iter: int
    tol: float
    _state: dict = field(default_factory=dict, repr=False)

    @property
    def moments(self) -> bool:
        """Whether the Gram-from-sums path applies: tall, numeric-only regression."""
        p = self.X.shape[1]
        return (
            self.task == Task.regression
            and not self.categorical
            and not self.impute
            and all(len(train) > p for train, _ in self.folds)
        )

    def model(self, candidate: Candidate):
        return make_model(candidate, task=self.task, max_iter=self.max_iter, tol=self.tol)

    def estimator(self, candidate: Candidate | None) -> Pipeline:
        """The unfitted pipeline for ``candidate`` (``None``: the unpenalized baseline)."""
        return make_estimator(
            candidate,
            task=self.task,
            impute=self.impute,
            numeric=self.numeric,
            categorical=self.categorical,
            max_iter=self.max_iter,
            tol=self.tol,
        )

    def scores(self, candidate: Candidate, *, on_fold: OnFold | None = None) -> Scores:
        """Validation and training score of ``candidate`` on each fold."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.moments:
                return self._moment_scores(candidate)
            return self._array_scores(candidate, on_fold)

    def refit(self, candidate: Candidate) -> Pipeline:
        """``candidate``'s pipeline fitted on all training rows."""
        return self.refit_with_status(candidate)[0]

    def refit_with_status(self, candidate: Candidate) -> tuple[Pipeline, bool]:
        """``candidate``'s pipeline fitted on all training rows, and whether it converged."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.moments:
                prep = self._full_scaler()
                stats = self._moment_stats()
                model, converged = self._moment_model(candidate, stats["full"])
            else:
                fold = self._array_fold(-1)
                prep = fold.prep
                model, converged = fold.fit(self, candidate)
        return Pipeline([("prep", prep), ("model", model)]), converged

    # -- tall numeric regression: Gram matrices from sums ----------------------------------

    def _raw(self) -> tuple[np.ndarray, np.ndarray]:
        if "raw" not in self._state:
            self._state["raw"] = (
                self.X.to_numpy(dtype=np.float64),
                self.y.to_numpy(dtype=np.float64),
            )
        return self._state["raw"]

    def _full_scaler(self):
        if "scaler" not in self._state:
            self._state["scaler"] = make_preprocessor(self.numeric).fit(self.X)
        return self._state["scaler"]

    def _moment_stats(self) -> dict:
        """Per fold (and "full": all rows): mean, scale, target mean and the Gram summary."""
        if "moments" in self._state:
            return self._state["moments"]
        X, y = self._raw()
        n, p = X.shape
        center, y_center = X.mean(axis=0), float(y.mean())
        chunk = max(1, CHUNK_VALUES // max(p, 1))

        def sums(rows: np.ndarray | None):
            count = n if rows is None else len(rows)
            s, S = np.zeros(p), np.zeros((p, p))
            sy, Xy, yy = 0.0, np.zeros(p), 0.0
            for start in range(0, count, chunk):
                part = slice(start, start + chunk) if rows is None else rows[start : start + chunk]
                block = X[part] - center
                target = y[part] - y_center
                s += block.sum(axis=0)
                S += block.T @ block
                sy += float(target.sum())
                Xy += block.T @ target
                yy += float(target @ target)
            return count, s, S, sy, Xy, yy

        def summary(count, s, S, sy, Xy, yy):
            shift, y_shift = s / count, sy / count
            S = S - count * np.outer(shift, shift)
            Xy = Xy - count * shift * y_shift
            yy = yy - count * y_shift**2
            var = np.diag(S) / count
            # A column constant on these rows has variance zero, but a difference of sums
            # leaves rounding noise (even negative): what StandardScaler gives such a column,
            # scale 1 and centred values of exactly zero, is set here.
            constant = var <= 1e-9 * spread
            S[constant, :] = 0.0
            S[:, constant] = 0.0
            Xy = np.where(constant, 0.0, Xy)
            scale = _scale(np.where(constant, 0.0, var))
            gram = _Gram(
                np.ascontiguousarray(S / np.outer(scale, scale)), Xy / scale, max(yy, 0.0), count
            )
            return {
                "mean": center + shift,
                "scale": scale,
                "y_mean": y_center + y_shift,
                "gram": gram,
            }

        total = sums(None)
        spread = np.diag(total[2]) / n  # each column's variance over all rows
        stats = {"full": summary(*total), "center": (center, y_center)}
        for i, (_, test) in enumerate(self.folds):
            held = sums(np.asarray(test))
            rest = tuple(a - b for a, b in zip(total, held, strict=True))
            stats[i] = {**summary(*rest), "sums": {True: held, False: rest}}
        self._state["moments"] = stats
        return stats

    def _moment_model(self, candidate: Candidate, stats: dict):
        """The fold's model in standardized space, and whether it converged."""
        gram: _Gram = stats["gram"]
        model = self.model(candidate)
        p = gram.Q.shape[0]
        if candidate.penalty == Penalty.l2:
            coef, attrs, converged = gram.ridge(candidate.alpha), {"n_iter_": None}, True
        else:
            ratio = L1_RATIO.get(candidate.penalty, candidate.l1_ratio)
            coef, gap, n_iter = gram.enet(
                candidate.alpha, ratio, max_iter=self.max_iter, tol=self.tol
            )
            attrs, converged = {"n_iter_": n_iter, "dual_gap_": gap}, n_iter < self.max_iter
        # The standardized training columns have mean zero: the intercept is the target's mean.
        return _fitted(model, coef, stats["y_mean"], p, **attrs), converged

    def _moment_scores(self, candidate: Candidate) -> Scores:
        X, y = self._raw()
        stats = self._moment_stats()
        k = len(self.folds)
        weights, offsets, converged = np.empty((X.shape[1], k)), np.empty(k), True
        for i in range(k):
            model, ok = self._moment_model(candidate, stats[i])
            converged &= ok
            weights[:, i] = model.coef_ / stats[i]["scale"]
            offsets[i] = model.intercept_ - float(stats[i]["mean"] @ weights[:, i])
        interrupt.check()
        if self.scoring in _SQUARED_ERROR:
            return self._squared_error_scores(stats, weights, offsets, converged)
        # Every row's prediction by every fold's model: one pass over the data.
        predictions = (X @ weights + offsets).T
        scorer = get_scorer(self.scoring)
        cv, train = [], []
        for i, (train_rows, test_rows) in enumerate(self.folds):
            cv.append(float(scorer(_Fixed(predictions[i, test_rows]), None, y[test_rows])))
            train.append(float(scorer(_Fixed(predictions[i, train_rows]), None, y[train_rows])))
        return Scores(cv, train, converged)

    def _squared_error_scores(
        self, stats: dict, weights: np.ndarray, offsets: np.ndarray, converged: bool
    ) -> Scores:
        """RMSE, MSE or R^2 of every fold from the rows' sums, without touching the rows.

        With x, y taken relative to the data's mean and c the model's offset there, the sum
        of squared residuals is y'y - 2 w'X'y - 2c 1'y + w'X'Xw + 2c w'X'1 + n c^2.
        """
        center, y_center = stats["center"]
        score = _SQUARED_ERROR[self.scoring]
        out: dict[bool, list[float]] = {True: [], False: []}
        for i in range(len(self.folds)):
            w = weights[:, i]
            c = float(center @ w) + offsets[i] - y_center
            for held, (n, s, S, sy, Xy, yy) in stats[i]["sums"].items():
                ss = yy - 2 * w @ Xy - 2 * c * sy + w @ S @ w + 2 * c * (w @ s) + n * c * c
                out[held].append(float(score(max(ss, 0.0), n, yy - sy * sy / n)))
        return Scores(out[True], out[False], converged)

    # -- everything else: preprocessed arrays per fold ---------------------------------------

    def _array_fold(self, index: int) -> _ArrayFold:
        key = ("fold", index)
        if key not in self._state:
            if index < 0:
                train, test = np.arange(len(self.X)), None
            else:
                train, test = self.folds[index]
            self._state[key] = _ArrayFold.build(self, train, test)
        return self._state[key]

    def _array_scores(self, candidate: Candidate, on_fold: OnFold | None) -> Scores:
        scorer = get_scorer(self.scoring)
        cv, train, converged = [], [], True
        for i in range(len(self.folds)):
            interrupt.check()
            fold = self._array_fold(i)
            model, ok = fold.fit(self, candidate)
            converged &= ok
            cv.append(self._score(scorer, model, fold.X_test, fold.y_test))
            train.append(self._score(scorer, model, fold.X_train, fold.y_train))
            if on_fold is not None and i < len(self.folds) - 1:
                on_fold(cv)
        return Scores(cv, train, converged)

    def _score(self, scorer, model, X: np.ndarray, y: np.ndarray) -> float:
        """``scorer(model, X, y)`` without the scorer's input checks on X, which cost more
        than the fit on wide data: a regression model's predictions are one matrix-vector
        product (squared-error scores are then computed here); ROC AUC of a binary
        logistic model comes from its decision values."""
        if self.task == Task.regression:
            predictions = X @ model.coef_ + model.intercept_
            if self.scoring in _SQUARED_ERROR:
                residual = y - predictions
                centered = y - y.mean()
                score = _SQUARED_ERROR[self.scoring]
                return float(score(float(residual @ residual), len(y), float(centered @ centered)))
            return float(scorer(_Fixed(predictions), None, y))
        if self.scoring == "roc_auc" and model.coef_.shape[0] == 1:
            positive = y == model.classes_[1]
            if 0 < positive.sum() < len(y):
                return roc_auc(positive, X @ model.coef_[0] + model.intercept_[0])
        return float(scorer(model, X, y))


@dataclass
class _ArrayFold:
    """A fold's training (and validation) rows, preprocessed once, and its solved models."""

    prep: object
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    solved: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict)

    @classmethod
    def build(cls, cv: FastCV, train: np.ndarray, test: np.ndarray | None) -> _ArrayFold:
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
            if n > p:
                return self._enet_gram(cv, candidate)
            return self._enet_path(cv, candidate)
        ratio = L1_RATIO.get(candidate.penalty, candidate.l1_ratio)
        limit = NEWTON_MAX_FEATURES if ratio > 0 else NEWTON_MAX_FEATURES_L2
        if n > p and p <= limit and len(self._classes()) == 2:
            return self._logistic_newton(cv, candidate)
        return self._logistic(cv, candidate)

    def _classes(self) -> np.ndarray:
        if "classes" not in self._cache:
            self._cache["classes"] = np.unique(self.y_train)
        return self._cache["classes"]

    def _logistic_newton(self, cv: FastCV, candidate: Candidate):
        """Binary logistic regression by proximal Newton, from the nearest solution here."""
        classes = self._classes()
        target = (self.y_train == classes[1]).astype(np.float64)
        ratio = L1_RATIO.get(candidate.penalty, candidate.l1_ratio)
        start = self._nearest(candidate, any_penalty=True)
        if start is None:
            share = float(target.mean())
            start = (None, _Point(np.zeros(self.X_train.shape[1]), math.log(share / (1 - share))))
        elif not isinstance(start[1], _Point):  # solved by lbfgs (L2 with many features)
            coef, intercept = start[1]
            start = (start[0], _Point(np.ravel(coef), float(np.ravel(intercept)[0])))
        result = _newton_logistic(
            self.X_train,
            target,
            candidate.alpha,
            ratio,
            start[1],
            tol=cv.tol,
            max_iter=cv.max_iter,
            hessian=self._cache.get("hessian"),
        )
        self._cache["hessian"] = result.hessian
        self._remember(candidate, result.point)
        coef, intercept = result.point.coef, result.point.intercept
        model = _fitted(
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
        ratio = L1_RATIO.get(candidate.penalty, candidate.l1_ratio)
        start = self._nearest(candidate, above=ratio > 0)
        alphas = [candidate.alpha]
        if ratio > 0:
            top = self._zero_alpha(ratio) if start is None else start[0]
            alphas = _path(top, candidate.alpha, per_decade=1)
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

    def _zero_alpha(self, ratio: float) -> float:
        """The alpha above which the L1 part makes every coefficient zero."""
        classes = np.unique(self.y_train)
        onehot = (self.y_train[:, None] == classes[None, :]).astype(float)
        gradient = self.X_train.T @ (onehot - onehot.mean(axis=0))
        return float(np.max(np.abs(gradient))) / ratio

    def _remember(self, candidate: Candidate, coefs) -> None:
        self.solved[(candidate.penalty, candidate.alpha, candidate.l1_ratio)] = coefs

    def _nearest(self, candidate: Candidate, *, above: bool = False, any_penalty: bool = False):
        """(alpha, coefficients) solved for the alpha (and l1_ratio) nearest ``candidate``'s;
        with ``above``, only stronger penalties (an L1 path is followed downwards); with
        ``any_penalty``, a solution for another penalty type may be the nearest."""
        best, distance = None, math.inf
        wanted = L1_RATIO.get(candidate.penalty, candidate.l1_ratio)
        for (penalty, alpha, ratio), coefs in self.solved.items():
            if (penalty != candidate.penalty and not any_penalty) or (
                above and alpha < candidate.alpha
            ):
                continue
            d = abs(math.log(alpha / candidate.alpha))
            share = L1_RATIO.get(penalty, ratio)
            if share is not None and wanted is not None:
                d += 10 * abs(share - wanted)
            if d < distance:
                best, distance = (alpha, coefs), d
        return best

    def _centered(self) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        """Column means, target mean, and the centered rows (Fortran order, for CD) and target."""
        if "centered" not in self._cache:
            mean = self.X_train.mean(axis=0)
            y_mean = float(np.mean(self.y_train))
            self._cache["centered"] = (
                mean,
                y_mean,
                np.asfortranarray(self.X_train - mean),
                self.y_train - y_mean,
            )
        return self._cache["centered"]

    def _ridge(self, cv: FastCV, candidate: Candidate):
        n, p = self.X_train.shape
        mean, y_mean, centered, y_centered = self._centered()
        if n > p:
            coef = self._gram().ridge(candidate.alpha)
        else:
            # Wide: (X'X + a I)^-1 X'y = X'(XX' + a I)^-1 y, from one n x n eigendecomposition.
            if "kernel" not in self._cache:
                values, vectors = np.linalg.eigh(centered @ centered.T)
                self._cache["kernel"] = (
                    np.clip(values, 0.0, None),
                    centered.T @ vectors,
                    vectors.T @ y_centered,
                )
            values, back, projected = self._cache["kernel"]
            coef = back @ (projected / (values + candidate.alpha))
        intercept = y_mean - float(mean @ coef)
        return _fitted(cv.model(candidate), coef, intercept, p, n_iter_=None)

    def _gram(self) -> _Gram:
        if "gram" not in self._cache:
            _, _, centered, y_centered = self._centered()
            self._cache["gram"] = _Gram(
                np.ascontiguousarray(centered.T @ centered),
                centered.T @ y_centered,
                float(y_centered @ y_centered),
                len(centered),
            )
        return self._cache["gram"]

    def _enet_gram(self, cv: FastCV, candidate: Candidate):
        mean, y_mean, _, _ = self._centered()
        ratio = L1_RATIO.get(candidate.penalty, candidate.l1_ratio)
        coef, gap, n_iter = self._gram().enet(
            candidate.alpha, ratio, max_iter=cv.max_iter, tol=cv.tol
        )
        intercept = y_mean - float(mean @ coef)
        model = _fitted(
            cv.model(candidate), coef, intercept, len(coef), n_iter_=n_iter, dual_gap_=gap
        )
        return model, n_iter < cv.max_iter

    def _enet_path(self, cv: FastCV, candidate: Candidate):
        """Wide data: coordinate descent down a short path of alphas, as LassoCV does.

        From the nearest alpha solved on this fold (or from the smallest alpha whose
        solution is all zeros), a few geometric steps reach ``candidate.alpha``, each step
        starting from the previous solution: much faster than a cold start at a small
        alpha, where coordinate descent on p >> n data crawls.
        """
        mean, y_mean, centered, y_centered = self._centered()
        ratio = L1_RATIO.get(candidate.penalty, candidate.l1_ratio)
        start = self._nearest(candidate, above=True)
        if start is None:
            top = float(np.max(np.abs(centered.T @ y_centered))) / (
                len(y_centered) * max(ratio, 1e-3)
            )
            start = (max(top, candidate.alpha), np.zeros(centered.shape[1]))
        alpha0, coef0 = start
        alphas = _path(alpha0, candidate.alpha, per_decade=4)
        _, coefs, gaps, n_iters = enet_path(
            centered,
            y_centered,
            l1_ratio=ratio,
            alphas=alphas,
            coef_init=np.array(coef0, copy=True),
            max_iter=cv.max_iter,
            tol=cv.tol,
            return_n_iter=True,
        )
        coef = np.ascontiguousarray(coefs[:, -1])
        self._remember(candidate, coef)
        intercept = y_mean - float(mean @ coef)
        model = _fitted(
            cv.model(candidate),
            coef,
            intercept,
            len(coef),
            n_iter_=int(n_iters[-1]),
            dual_gap_=float(gaps[-1]),
        )
        return model, int(n_iters[-1]) < cv.max_iter


def _path(start: float, end: float, *, per_decade: int) -> list[float]:
    """Alphas from just after ``start`` down to ``end``, geometric, at most 30 steps."""
    if start <= end:
        return [end]
    steps = min(30, max(1, math.ceil(per_decade * math.log10(start / end))))
    alphas = list(np.geomspace(start, end, steps + 1)[1:])
    alphas[-1] = end
    return alphas


@dataclass
class _Point:
    """Coefficients and intercept, with the loss's value and gradient there once known: the
    loss does not depend on the penalty, so a warm start from another alpha reuses them."""

    coef: np.ndarray
    intercept: float
    loss: float | None = None
    gradient: tuple[np.ndarray, float] | None = None


@dataclass
class _Newton:
    point: _Point
    n_iter: int
    converged: bool
    hessian: _Hessian | None


def _log_loss(eta: np.ndarray, target: np.ndarray) -> float:
    return float(np.sum(np.logaddexp(0.0, eta)) - target @ eta)


def _penalty(w: np.ndarray, l1: float, l2: float) -> float:
    return l1 * float(np.abs(w).sum()) + 0.5 * l2 * float(w @ w)


def _violation(g: np.ndarray, w: np.ndarray, l1: float, l2: float) -> float:
    """The largest entry of the (sub)gradient nearest zero: 0 exactly at the optimum."""
    gw = g + l2 * w
    shrunk = np.sign(gw) * np.maximum(np.abs(gw) - l1, 0.0)
    return float(np.max(np.abs(np.where(w != 0, gw + l1 * np.sign(w), shrunk)), initial=0.0))


@dataclass
class _Hessian:
    """X'VX with the unpenalized intercept eliminated (its Schur complement Q), X'v, 1'v."""

    Q: np.ndarray
    hb: np.ndarray
    hbb: float
    _pinv: np.ndarray | None = None

    @classmethod
    def at(cls, X: np.ndarray, prob: np.ndarray) -> _Hessian:
        v = prob * (1.0 - prob)
        root = X * np.sqrt(v)[:, None]
        hb = X.T @ v
        hbb = float(v.sum())
        return cls(np.ascontiguousarray(root.T @ root - np.outer(hb, hb) / hbb), hb, hbb)

    @property
    def pinv(self) -> np.ndarray:
        """Q's pseudo-inverse (for the coordinate descent's duality gap), computed once."""
        if self._pinv is None:
            values, vectors = np.linalg.eigh(self.Q)
            keep = values > values[-1] * self.Q.shape[0] * np.finfo(float).eps
            self._pinv = (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
        return self._pinv


def _newton_logistic(
    X: np.ndarray,
    target: np.ndarray,
    alpha: float,
    ratio: float,
    start: _Point,
    *,
    tol: float,
    max_iter: int,
    hessian: _Hessian | None = None,
) -> _Newton:
    """Minimise sum(log loss) + alpha (ratio |w|_1 + (1 - ratio) |w|^2 / 2), the intercept
    unpenalized: LogisticRegression(C=1/alpha, l1_ratio=ratio)'s objective.

    Each step minimises the loss's quadratic model plus the penalty (for the L2 penalty alone
    a linear solve, otherwise Gram coordinate descent), then backtracks until the objective
    falls enough (Armijo). ``hessian`` from an earlier solve is used while each step still
    cuts the gradient tenfold; otherwise it is recomputed at the current point.
    """
    n, p = X.shape
    l1, l2 = alpha * ratio, alpha * (1.0 - ratio)
    w, b = np.array(start.coef, dtype=np.float64, copy=True), float(start.intercept)
    eta = X @ w + b
    loss = _log_loss(eta, target) if start.loss is None else start.loss
    gradient, prob = start.gradient, None
    n_iter, converged, last, stalled = 0, False, math.inf, 0
    objective, progress = loss + _penalty(w, l1, l2), math.inf
    inner_tol = 1e-10  # the coordinate descent's duality gap, relative; tightened on a stall
    while True:
        if gradient is None:
            prob = expit(eta)
            residual = prob - target
            gradient = X.T @ residual, float(residual.sum())
        if stalled == 3:  # no progress left within rounding (tol out of reach): unconverged
            break
        g, gb = gradient
        violation = max(_violation(g, w, l1, l2), abs(gb))
        # As lbfgs: a small gradient. And, as a Newton method should, a last step that no
        # longer moved the objective: on nearly separable folds the loss is so flat that
        # the gradient is small far from the optimum.
        if n_iter > 0 and violation <= tol * n and progress <= tol * abs(objective):
            converged = True
            break
        if n_iter >= max_iter:
            break
        if hessian is None or violation > 0.1 * last:
            hessian = _Hessian.at(X, expit(eta) if prob is None else prob)
            if n_iter > 0:
                inner_tol = max(inner_tol * 1e-3, 1e-18)
        last = violation
        Q, hb, hbb = hessian.Q, hessian.hb, hessian.hbb
        q = Q @ w - (g - hb * (gb / hbb))
        if l1 == 0:
            w_new = np.linalg.solve(Q + l2 * np.eye(p), q)
        else:
            # The solver's duality gap reads the norm of a y with Q = A'A, q = A'y.
            y_norm = math.sqrt(max(float(q @ hessian.pinv @ q), 0.0))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                w_new = np.asarray(
                    enet_coordinate_descent_gram(
                        w.copy(),
                        l1,
                        l2,
                        Q,
                        q,
                        np.array([y_norm]),
                        NEWTON_INNER_SWEEPS,
                        inner_tol,
                        np.random.RandomState(0),
                        0,
                        0,
                        1,
                    )[0]
                )
        dw = w_new - w
        db = -(gb + hb @ dw) / hbb
        decrease = g @ dw + gb * db + _penalty(w_new, l1, l2) - _penalty(w, l1, l2)
        step, t = X @ dw + db, 1.0
        while True:
            trial_loss = _log_loss(eta + t * step, target)
            trial = trial_loss + _penalty(w + t * dw, l1, l2)
            if trial <= objective + 0.01 * t * decrease:
                break
            t *= 0.5
            if t < 1e-10:  # no descent left within rounding: stay, unconverged
                return _Newton(_Point(w, b, loss, gradient), n_iter, False, hessian)
        progress = objective - trial
        stalled = stalled + 1 if progress <= 1e-13 * abs(objective) else 0
        w, b, eta, loss, objective = w + t * dw, b + t * db, eta + t * step, trial_loss, trial
        gradient = prob = None
        n_iter += 1
    return _Newton(_Point(w, b, loss, gradient), n_iter, converged, hessian)


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve, ties counted half (roc_auc_score's value), in O(n log n)."""
    pos, neg = np.sort(scores[positive]), np.sort(scores[~positive])
    below = np.searchsorted(neg, pos, side="left")
    tied = np.searchsorted(neg, pos, side="right") - below
    return float((below.sum() + 0.5 * tied.sum()) / (len(pos) * len(neg)))


def reference_scores(cv: FastCV, candidate: Candidate) -> list[float]:
    """The straightforward computation the fast path must match: a fresh pipeline per fold."""
    scorer = get_scorer(cv.scoring)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, test in cv.folds:
            model = cv.estimator(candidate).fit(cv.X.iloc[train], cv.y.iloc[train])
            out.append(float(scorer(model, cv.X.iloc[test], cv.y.iloc[test])))
    return out
