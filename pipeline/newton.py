"""Binary logistic regression by a proximal Newton method (as glmnet's), for tall data.

It minimises sum(log loss) + l1_reg |w|_1 + l2_reg/2 ||w||^2 with the intercept unpenalized
(``pipeline.models.logistic_penalties`` gives the weights of a candidate), the objective
of LogisticRegression(C=1/alpha, l1_ratio=...). Each step minimises the loss's quadratic
model plus the penalty (the L2 penalty alone: a linear solve; otherwise coordinate descent
on the p x p Hessian by ``pipeline.gram``), then backtracks until the objective falls
enough (Armijo). A Hessian from an earlier solve is reused while each step still cuts the
gradient tenfold. It stops where lbfgs does, at a gradient (for L1, the subgradient nearest
zero) of at most ``tol`` per row, after at least one step.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning

from pipeline.gram import SquareRoot, enet_rows

# Coordinate-descent sweeps per Newton step: the quadratic model need not be solved exactly.
INNER_SWEEPS = 200


@dataclass
class Point:
    """Coefficients and intercept, with the loss's value and gradient there once known: the
    loss does not depend on the penalty, so a warm start from another alpha reuses them."""

    coef: np.ndarray
    intercept: float
    loss: float | None = None
    gradient: tuple[np.ndarray, float] | None = None


@dataclass
class Hessian:
    """X'VX with the unpenalized intercept eliminated (its Schur complement Q), X'v, 1'v."""

    Q: np.ndarray
    hb: np.ndarray
    hbb: float
    root: SquareRoot | None = None

    @classmethod
    def at(cls, X: np.ndarray, prob: np.ndarray) -> Hessian:
        """The Hessian of the log loss at the rows' probabilities ``prob``."""
        v = prob * (1.0 - prob)
        root = X * np.sqrt(v)[:, None]
        hb = X.T @ v
        hbb = float(v.sum())
        return cls(np.ascontiguousarray(root.T @ root - np.outer(hb, hb) / hbb), hb, hbb)

    def square_root(self) -> SquareRoot:
        """Q's square-root form, computed once."""
        if self.root is None:
            self.root = SquareRoot(self.Q)
        return self.root


@dataclass
class Result:
    """Where the solve ended, after how many steps, whether it converged, its Hessian."""

    point: Point
    n_iter: int
    converged: bool
    hessian: Hessian | None


def log_loss(eta: np.ndarray, target: np.ndarray) -> float:
    """The summed log loss of decision values ``eta`` for 0/1 ``target``."""
    return float(np.sum(np.logaddexp(0.0, eta)) - target @ eta)


def penalty(w: np.ndarray, l1: float, l2: float) -> float:
    """l1 |w|_1 + l2/2 ||w||^2."""
    return l1 * float(np.abs(w).sum()) + 0.5 * l2 * float(w @ w)


def violation(g: np.ndarray, w: np.ndarray, l1: float, l2: float) -> float:
    """The largest entry of the (sub)gradient nearest zero: 0 exactly at the optimum."""
    gw = g + l2 * w
    shrunk = np.sign(gw) * np.maximum(np.abs(gw) - l1, 0.0)
    return float(np.max(np.abs(np.where(w != 0, gw + l1 * np.sign(w), shrunk)), initial=0.0))


def _direction(hessian: Hessian, w, gradient, l1: float, l2: float, inner_tol: float):
    """The minimiser of the quadratic model plus the penalty, and the intercept's move."""
    g, gb = gradient
    Q, hb, hbb = hessian.Q, hessian.hb, hessian.hbb
    q = Q @ w - (g - hb * (gb / hbb))
    if l1 == 0:
        w_new = np.linalg.solve(Q + l2 * np.eye(len(w)), q)
    else:
        root = hessian.square_root()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            w_new = enet_rows(
                root.rows,
                root.target(q),
                [(l1, l2)],
                gram=(Q, q),
                coef_init=w,
                max_iter=INNER_SWEEPS,
                tol=inner_tol,
            )[-1].coef
    dw = w_new - w
    return dw, -(gb + hb @ dw) / hbb


def _line_search(X, target, state, dw, db, l1: float, l2: float):
    """Backtracking from the full step: (t, loss, objective), or None if none descends."""
    w, eta, objective, (g, gb) = state
    decrease = g @ dw + gb * db + penalty(w + dw, l1, l2) - penalty(w, l1, l2)
    step, t = X @ dw + db, 1.0
    while True:
        trial_loss = log_loss(eta + t * step, target)
        trial = trial_loss + penalty(w + t * dw, l1, l2)
        if trial <= objective + 0.01 * t * decrease:
            return t, step, trial_loss, trial
        t *= 0.5
        if t < 1e-10:  # no descent left within rounding
            return None


def newton_logistic(
    X: np.ndarray,
    target: np.ndarray,
    l1: float,
    l2: float,
    start: Point,
    *,
    tol: float,
    max_iter: int,
    hessian: Hessian | None = None,
) -> Result:
    """Minimise sum(log loss) + l1 |w|_1 + l2/2 ||w||^2 from ``start`` (see the module)."""
    n = X.shape[0]
    w, b = np.array(start.coef, dtype=np.float64, copy=True), float(start.intercept)
    eta = X @ w + b
    loss = log_loss(eta, target) if start.loss is None else start.loss
    gradient, prob = start.gradient, None
    n_iter, last, stalled = 0, math.inf, 0
    objective, progress = loss + penalty(w, l1, l2), math.inf
    inner_tol = 1e-10  # the coordinate descent's duality gap, relative; tightened on a stall
    while True:
        if gradient is None:
            prob = expit(eta)
            residual = prob - target
            gradient = X.T @ residual, float(residual.sum())
        if stalled == 3:  # no progress left within rounding (tol out of reach): unconverged
            return Result(Point(w, b, loss, gradient), n_iter, False, hessian)
        current = max(violation(gradient[0], w, l1, l2), abs(gradient[1]))
        # As lbfgs: a small gradient. And, as a Newton method should, a last step that no
        # longer moved the objective: on nearly separable folds the loss is so flat that
        # the gradient is small far from the optimum.
        if n_iter > 0 and current <= tol * n and progress <= tol * abs(objective):
            return Result(Point(w, b, loss, gradient), n_iter, True, hessian)
        if n_iter >= max_iter:
            return Result(Point(w, b, loss, gradient), n_iter, False, hessian)
        if hessian is None or current > 0.1 * last:
            hessian = Hessian.at(X, expit(eta) if prob is None else prob)
            inner_tol = max(inner_tol * 1e-3, 1e-18) if n_iter > 0 else inner_tol
        last = current
        dw, db = _direction(hessian, w, gradient, l1, l2, inner_tol)
        found = _line_search(X, target, (w, eta, objective, gradient), dw, db, l1, l2)
        if found is None:
            return Result(Point(w, b, loss, gradient), n_iter, False, hessian)
        t, step, loss, trial = found
        progress = objective - trial
        stalled = stalled + 1 if progress <= 1e-13 * abs(objective) else 0
        w, b, eta, objective = w + t * dw, b + t * db, eta + t * step, trial
        gradient = prob = None
        n_iter += 1
