"""Bootstrap intervals and paired comparisons of holdout metrics."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.evaluate import classification_metrics, regression_metrics
from pipeline.uncertainty import METRICS, Predictions, compare, interval


def _regression(n=60, seed=0) -> Predictions:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return Predictions(y, y + rng.normal(scale=0.3, size=n))


def _classification(n_classes: int, n=90, seed=0) -> Predictions:
    rng = np.random.default_rng(seed)
    classes = np.array(["a", "b", "c"][:n_classes])
    y = classes[np.arange(n) % n_classes]
    logits = rng.normal(size=(n, n_classes)) + 2.0 * (y[:, None] == classes[None, :])
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return Predictions(y, proba, classes)


@pytest.mark.parametrize(
    "make", [_regression, lambda: _classification(2), lambda: _classification(3)]
)
def test_each_metric_on_all_rows_is_scikit_learns(make):
    p = make()
    if p.classes is None:
        expected = regression_metrics(p.y, p.values)
    else:
        expected = classification_metrics(p.y, p.values, list(p.classes))
    every_row = np.arange(len(p.y))[None, :]
    for metric, value in expected.items():
        assert METRICS[metric](p, every_row)[0] == pytest.approx(value, rel=1e-9), metric


def test_an_interval_holds_its_value_and_is_reproducible():
    p = _regression()
    value = regression_metrics(p.y, p.values)["rmse"]
    a = interval("rmse", p, value, n_resamples=400, level=0.9, seed=3)
    assert a.low < value < a.high
    assert a == interval("rmse", p, value, n_resamples=400, level=0.9, seed=3)
    wider = interval("rmse", p, value, n_resamples=400, level=0.99, seed=3)
    assert wider.low <= a.low and wider.high >= a.high


def test_a_paired_comparison_is_tighter_than_two_separate_intervals():
    """Two models with nearly the same errors: each interval is wide, their difference is
    measured row for row."""
    a = _regression(seed=1)
    b = Predictions(a.y, a.values + np.random.default_rng(2).normal(scale=0.01, size=len(a.y)))
    scores = {k: regression_metrics(p.y, p.values)["rmse"] for k, p in (("a", a), ("b", b))}
    paired = compare(
        "rmse", a, b, value_a=scores["a"], value_b=scores["b"],
        n_resamples=500, level=0.95, seed=0,
    )  # fmt: skip
    alone = interval("rmse", a, scores["a"], n_resamples=500, level=0.95, seed=0)
    assert paired.gain.high - paired.gain.low < (alone.high - alone.low) / 10
    assert paired.gain.value == pytest.approx(scores["b"] - scores["a"])  # lower RMSE: a gain
