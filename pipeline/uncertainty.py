"""How sure a holdout metric is: bootstrap intervals, and paired comparisons of two models.

Rows of the holdout are resampled with replacement (seeded, ``n_resamples`` times); each
resample gives every metric of every model on the *same* rows, so the difference between
two models is measured pairwise, row for row, which is far tighter than comparing two
separate intervals. Intervals are percentile intervals at ``level``.

The metrics are those of ``pipeline.evaluate`` (computed here vectorized over resamples,
and equal to scikit-learn's on the full holdout: ``tests/test_uncertainty.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from pipeline.config import METRIC_DIRECTION
from pipeline.scoring import roc_auc

CELLS = 4_000_000  # resampled rows drawn and scored at once (bounds memory on large holdouts)


@dataclass(frozen=True)
class Predictions:
    """One model's holdout predictions: values (regression) or class probabilities, with
    the holdout's targets and (classification) the classes in column order."""

    y: np.ndarray
    values: np.ndarray
    classes: np.ndarray | None = None


@dataclass(frozen=True)
class Interval:
    value: float  # on the whole holdout
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    """How much better model A is than model B (positive: better, in the metric's units)."""

    metric: str
    gain: Interval
    level: float
    n_rows: int
    n_resamples: int

    def describe(self) -> str:
        g = self.gain
        return (
            f"{_signed(g.value)} ({self.level:.0%} interval {_signed(g.low)} to {_signed(g.high)})"
        )


def _signed(x: float) -> str:
    return "0" if x == 0 else f"{x:+.4g}"


def resamples(n_rows: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of the resamples, a matrix of at most ``CELLS`` at a time."""
    rng = np.random.default_rng(seed)
    left, chunk = n_resamples, max(1, CELLS // max(n_rows, 1))
    while left > 0:
        size = min(chunk, left)
        yield rng.integers(0, n_rows, size=(size, n_rows))
        left -= size


def samples(metric: str, preds: Predictions, n_resamples: int, seed: int) -> np.ndarray:
    """The metric on each resample (same seed, same rows: pairs with another model's)."""
    score = METRICS[metric]
    parts = [score(preds, rows) for rows in resamples(len(preds.y), n_resamples, seed)]
    return np.concatenate(parts)


def interval(
    metric: str, preds: Predictions, value: float, *, n_resamples: int, level: float, seed: int
) -> Interval:
    """``value`` (the metric on the whole holdout) and its bootstrap interval."""
    low, high = _percentiles(samples(metric, preds, n_resamples, seed), level)
    return Interval(value, low, high)


def compare(
    metric: str,
    a: Predictions,
    b: Predictions,
    *,
    value_a: float,
    value_b: float,
    n_resamples: int,
    level: float,
    seed: int,
) -> Comparison:
    """A paired bootstrap of A's gain over B: both scored on the same resampled rows."""
    sign = 1.0 if METRIC_DIRECTION[metric] else -1.0
    gains = sign * (samples(metric, a, n_resamples, seed) - samples(metric, b, n_resamples, seed))
    low, high = _percentiles(gains, level)
    gain = Interval(sign * (value_a - value_b), low, high)
    return Comparison(metric, gain, level, len(a.y), n_resamples)


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


# -- the metrics, on every resample of a chunk at once ---------------------------------------


def _rmse(p: Predictions, rows: np.ndarray) -> np.ndarray:
    return np.sqrt(((p.y - p.values) ** 2)[rows].mean(axis=1))


def _mae(p: Predictions, rows: np.ndarray) -> np.ndarray:
    return np.abs(p.y - p.values)[rows].mean(axis=1)


def _r2(p: Predictions, rows: np.ndarray) -> np.ndarray:
    y = p.y[rows]
    residual = ((p.y - p.values) ** 2)[rows].sum(axis=1)
    spread = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spread > 0, 1.0 - residual / spread, np.nan)


def _true_column(p: Predictions) -> np.ndarray:
    return np.searchsorted(p.classes, p.y)


def _accuracy(p: Predictions, rows: np.ndarray) -> np.ndarray:
    right = p.values.argmax(axis=1) == _true_column(p)
    return right[rows].mean(axis=1)


def _log_loss(p: Predictions, rows: np.ndarray) -> np.ndarray:
    eps = np.finfo(p.values.dtype).eps  # as scikit-learn's log_loss clips
    true = np.clip(p.values, eps, 1 - eps)[np.arange(len(p.y)), _true_column(p)]
    loss = -np.log(true)
    return loss[rows].mean(axis=1)


def _f1(p: Predictions, rows: np.ndarray) -> np.ndarray:
    """Macro F1 over the classes present (true or predicted) in each resample."""
    k = len(p.classes)
    true, pred = _true_column(p), p.values.argmax(axis=1)
    out = np.empty(len(rows))
    for i, r in enumerate(rows):
        n_true = np.bincount(true[r], minlength=k)
        n_pred = np.bincount(pred[r], minlength=k)
        hits = np.bincount(true[r][true[r] == pred[r]], minlength=k)
        present = (n_true + n_pred) > 0
        out[i] = np.mean(2 * hits[present] / (n_true + n_pred)[present])
    return out


def _roc_auc(p: Predictions, rows: np.ndarray) -> np.ndarray:
    """ROC AUC (one-vs-rest macro for several classes); NaN where a class is missing."""
    true = _true_column(p)
    columns = [1] if len(p.classes) == 2 else range(len(p.classes))
    out = np.empty(len(rows))
    for i, r in enumerate(rows):
        aucs = []
        for c in columns:
            positive = true[r] == c
            if positive.all() or not positive.any():
                aucs.append(np.nan)
            else:
                aucs.append(roc_auc(positive, p.values[r, c]))
        out[i] = np.mean(aucs)
    return out


METRICS: dict[str, Callable[[Predictions, np.ndarray], np.ndarray]] = {
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
    "accuracy": _accuracy,
    "log_loss": _log_loss,
    "f1": _f1,
    "roc_auc": _roc_auc,
}
