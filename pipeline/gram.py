"""Penalized least squares on centered rows or on their sufficient statistics, by
scikit-learn's public ``enet_path`` (coordinate descent on a precomputed Gram matrix).

Every problem here is 1/2 ||y - Xw||^2 + l1_reg |w|_1 + l2_reg/2 ||w||^2 with weights
``(l1_reg, l2_reg)`` that ``pipeline.models`` derives from a candidate: this module never
sees an alpha.

A problem known only by its statistics X'X, X'y and y'y (a fold's Gram matrix summed
from raw rows, or a Newton step's quadratic model) is handed to ``enet_path`` as an
equivalent data set of at most p + 1 rows, the square-root form of the statistics: rows
R = sqrt(L) V' from the eigendecomposition X'X = V L V', a target r with R'r = X'y, and
one zero row whose target makes r'r = y'y. For every w, ||r - Rw||^2 = ||y - Xw||^2, so
R and r are a genuine data set with the same solution, Gram matrix and X'y (a plain
``ElasticNet`` fitted on them agrees: ``tests/test_gram.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import enet_path


@dataclass(frozen=True)
class Solution:
    """Coefficients, the duality gap (of the sum-scaled objective above) and sweeps used."""

    coef: np.ndarray
    gap: float
    n_iter: int


class SquareRoot:
    """Rows R (k x p, k = the numerical rank) with R'R = Q, for a symmetric PSD ``Q``."""

    def __init__(self, Q: np.ndarray):
        values, vectors = np.linalg.eigh(Q)
        self.values = np.clip(values, 0.0, None)
        self.vectors = vectors
        top = self.values[-1] if len(values) else 0.0
        keep = self.values > top * Q.shape[0] * np.finfo(float).eps
        self._kept = (np.sqrt(self.values[keep]), vectors[:, keep])
        self.rows = np.asfortranarray(self._kept[0][:, None] * self._kept[1].T)

    def target(self, q: np.ndarray, yy: float | None = None) -> np.ndarray:
        """r with R'r = q (q in Q's range), the least-norm one, or with ``yy`` padded by
        one entry to r'r = yy (for :meth:`padded_rows`)."""
        root, vectors = self._kept
        r = (vectors.T @ q) / root
        if yy is None:
            return r
        rest = max(yy - float(r @ r), 0.0)
        return np.append(r, np.sqrt(rest))

    def padded_rows(self) -> np.ndarray:
        """The rows and one zero row, to carry the part of y that no w can fit."""
        return np.asfortranarray(np.vstack([self.rows, np.zeros((1, self.rows.shape[1]))]))


@dataclass
class Gram:
    """The statistics of n centered rows: Q = X'X, q = X'y and yy = y'y."""

    Q: np.ndarray
    q: np.ndarray
    yy: float
    n: int
    _root: SquareRoot | None = field(default=None, repr=False)

    @property
    def root(self) -> SquareRoot:
        """Q's square-root form (its eigendecomposition), computed once."""
        if self._root is None:
            self._root = SquareRoot(self.Q)
        return self._root

    def ridge(self, l2_reg: float) -> np.ndarray:
        """The solution of (X'X + l2_reg I) w = X'y, from Q's eigendecomposition."""
        values, vectors = self.root.values, self.root.vectors
        return vectors @ ((vectors.T @ self.q) / (values + l2_reg))

    def enet(
        self,
        l1_reg: float,
        l2_reg: float,
        *,
        max_iter: int,
        tol: float,
        coef_init: np.ndarray | None = None,
    ) -> Solution:
        """Coordinate descent on Q, run by ``enet_path`` on the square-root rows."""
        rows = self.root.padded_rows()
        target = self.root.target(self.q, self.yy)
        return enet_rows(
            rows,
            target,
            [(l1_reg, l2_reg)],
            gram=(self.Q, self.q),
            coef_init=coef_init,
            max_iter=max_iter,
            tol=tol,
        )[-1]


def enet_rows(
    X: np.ndarray,
    y: np.ndarray,
    penalties: Sequence[tuple[float, float]],
    *,
    gram: tuple[np.ndarray, np.ndarray] | None = None,
    coef_init: np.ndarray | None = None,
    max_iter: int,
    tol: float,
) -> list[Solution]:
    """``enet_path`` on rows ``X`` (Fortran order) and target ``y``, centered, for each of
    ``penalties`` (strongest first, one L1 share), each solve starting from the last;
    ``gram``: X'X and X'y, precomputed. ``tol`` is ``enet_path``'s (relative to y'y)."""
    m = X.shape[0]
    totals = [l1 + l2 for l1, l2 in penalties]
    l1_ratio = penalties[0][0] / totals[0]
    precompute, Xy = (False, None) if gram is None else gram
    w = np.zeros(X.shape[1]) if coef_init is None else np.array(coef_init, dtype=np.float64)
    _, coefs, gaps, n_iters = enet_path(
        X,
        y,
        l1_ratio=l1_ratio,
        alphas=[total / m for total in totals],
        precompute=precompute,
        Xy=Xy,
        coef_init=w,  # a copy: enet_path solves in place
        check_input=False,
        max_iter=max_iter,
        tol=tol,
        return_n_iter=True,
    )
    return [
        Solution(np.ascontiguousarray(coefs[:, i]), float(gaps[i]) * m, int(n_iters[i]))
        for i in range(len(penalties))
    ]
