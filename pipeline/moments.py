"""Tall numeric regression scored from sums: every fold's standardized Gram matrix X'X and
X'y come from sums over row chunks, without a standardized copy of the data.

The sums over all rows, less those over a fold's validation rows, are the fold's training
sums; from them come its StandardScaler (mean and scale), its Gram statistics, and, for the
squared-error scorers, its training and validation scores without touching the rows again.
Lasso and ElasticNet run coordinate descent on the Gram matrix, Ridge takes any alpha from
one eigendecomposition (``pipeline.gram``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.config import Penalty
from pipeline.gram import Gram
from pipeline.models import Candidate, enet_penalties, ridge_penalty
from pipeline.scoring import SQUARED_ERROR, fitted, score_predictions

# Rows per chunk when summing a Gram matrix: about 32 MB of float64 at a time.
CHUNK_VALUES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Sums:
    """Sums over some rows, taken about the data's mean: count, 1'X, X'X, 1'y, X'y, y'y."""

    n: int
    s: np.ndarray
    S: np.ndarray
    sy: float
    Xy: np.ndarray
    yy: float

    def __sub__(self, other: Sums) -> Sums:
        return Sums(
            *(getattr(self, k) - getattr(other, k) for k in ("n", "s", "S", "sy", "Xy", "yy"))
        )


@dataclass(frozen=True)
class FoldStats:
    """Training rows of a fold (or all rows): StandardScaler's mean and scale, the target's
    mean, the standardized Gram statistics, and the sums (validation, training)."""

    mean: np.ndarray
    scale: np.ndarray
    y_mean: float
    gram: Gram
    sums: tuple[Sums, Sums] | None = None


def sums(X: np.ndarray, y: np.ndarray, center, y_center: float, rows=None) -> Sums:
    """The sums over ``rows`` (all when None), in chunks of about ``CHUNK_VALUES`` values."""
    n, p = X.shape
    count = n if rows is None else len(rows)
    chunk = max(1, CHUNK_VALUES // max(p, 1))
    s, S, sy, Xy, yy = np.zeros(p), np.zeros((p, p)), 0.0, np.zeros(p), 0.0
    for start in range(0, count, chunk):
        part = slice(start, start + chunk) if rows is None else rows[start : start + chunk]
        block = X[part] - center
        target = y[part] - y_center
        s += block.sum(axis=0)
        S += block.T @ block
        sy += float(target.sum())
        Xy += block.T @ target
        yy += float(target @ target)
    return Sums(count, s, S, sy, Xy, yy)


def summary(total: Sums, center, y_center: float, spread: np.ndarray) -> FoldStats:
    """The standardized statistics of the rows summed in ``total``; ``spread``: each column's
    variance over all rows, against which a column counts as constant."""
    count = total.n
    shift, y_shift = total.s / count, total.sy / count
    S = total.S - count * np.outer(shift, shift)
    Xy = total.Xy - count * shift * y_shift
    yy = total.yy - count * y_shift**2
    var = np.diag(S) / count
    # A column constant on these rows has variance zero, but a difference of sums leaves
    # rounding noise (even negative): what StandardScaler gives such a column, scale 1 and
    # centred values of exactly zero, is set here.
    constant = var <= 1e-9 * spread
    S[constant, :] = 0.0
    S[:, constant] = 0.0
    Xy = np.where(constant, 0.0, Xy)
    scale = np.sqrt(np.where(constant, 0.0, var))
    scale[scale < 10 * np.finfo(float).eps] = 1.0  # StandardScaler's rule
    Q = np.ascontiguousarray(S / np.outer(scale, scale))
    gram = Gram(Q, np.ascontiguousarray(Xy / scale), max(yy, 0.0), count)
    return FoldStats(center + shift, scale, y_center + y_shift, gram)


class Moments:
    """Per-fold statistics of raw rows ``X``, ``y`` built once; scores and models from them."""

    def __init__(self, X: np.ndarray, y: np.ndarray, folds: Sequence[tuple[np.ndarray, ...]]):
        self.X, self.y, self.folds = X, y, folds
        self.center, self.y_center = X.mean(axis=0), float(y.mean())
        total = sums(X, y, self.center, self.y_center)
        spread = np.diag(total.S) / len(X)
        self.full = summary(total, self.center, self.y_center, spread)
        self.stats: list[FoldStats] = []
        for _, test in folds:
            held = sums(X, y, self.center, self.y_center, np.asarray(test))
            rest = total - held
            fold = summary(rest, self.center, self.y_center, spread)
            self.stats.append(
                FoldStats(fold.mean, fold.scale, fold.y_mean, fold.gram, (held, rest))
            )

    def model(self, candidate: Candidate, stats: FoldStats, make: Callable, *, max_iter, tol):
        """``make(candidate)`` fitted on the rows of ``stats``, in standardized space, and
        whether it converged."""
        gram = stats.gram
        p = gram.Q.shape[0]
        if candidate.penalty == Penalty.l2:
            coef = gram.ridge(ridge_penalty(candidate))
            attrs, converged = {"n_iter_": None}, True
        else:
            l1_reg, l2_reg = enet_penalties(candidate, gram.n)
            solved = gram.enet(l1_reg, l2_reg, max_iter=max_iter, tol=tol)
            coef = solved.coef
            attrs = {"n_iter_": solved.n_iter, "dual_gap_": solved.gap / gram.n}
            converged = solved.n_iter < max_iter
        # The standardized training columns have mean zero: the intercept is the target's mean.
        return fitted(make(candidate), coef, stats.y_mean, p, **attrs), converged

    def weights(self, candidate: Candidate, make: Callable, *, max_iter: int, tol: float):
        """Every fold's model as raw-scale weights (p x k) and offsets (k), and whether all
        converged."""
        k = len(self.folds)
        weights, offsets, converged = np.empty((self.X.shape[1], k)), np.empty(k), True
        for i, stats in enumerate(self.stats):
            model, ok = self.model(candidate, stats, make, max_iter=max_iter, tol=tol)
            converged &= ok
            weights[:, i] = model.coef_ / stats.scale
            offsets[i] = model.intercept_ - float(stats.mean @ weights[:, i])
        return weights, offsets, converged

    def scores(self, scoring: str, weights: np.ndarray, offsets: np.ndarray):
        """Validation and training scores of each fold's model."""
        if scoring in SQUARED_ERROR:
            return self._squared_error_scores(scoring, weights, offsets)
        # Every row's prediction by every fold's model: one pass over the data.
        predictions = (self.X @ weights + offsets).T
        cv, train = [], []
        for i, (train_rows, test_rows) in enumerate(self.folds):
            cv.append(score_predictions(scoring, predictions[i, test_rows], self.y[test_rows]))
            train.append(score_predictions(scoring, predictions[i, train_rows], self.y[train_rows]))
        return cv, train

    def _squared_error_scores(self, scoring: str, weights: np.ndarray, offsets: np.ndarray):
        """RMSE, MSE or R^2 of every fold from the rows' sums, without touching the rows.

        With x, y taken relative to the data's mean and c the model's offset there, the sum
        of squared residuals is y'y - 2 w'X'y - 2c 1'y + w'X'Xw + 2c w'X'1 + n c^2.
        """
        score = SQUARED_ERROR[scoring]
        out: tuple[list[float], list[float]] = ([], [])
        for i, stats in enumerate(self.stats):
            w = weights[:, i]
            c = float(self.center @ w) + offsets[i] - self.y_center
            for side, t in zip(out, stats.sums, strict=True):
                ss = t.yy - 2 * w @ t.Xy - 2 * c * t.sy + w @ t.S @ w + 2 * c * (w @ t.s)
                ss += t.n * c * c
                side.append(float(score(max(ss, 0.0), t.n, t.yy - t.sy * t.sy / t.n)))
        return out
