from __future__ import annotations

import multiprocessing
import time

import numpy as np
import pytest

from pipeline.evaluate import regression_metrics
from pipeline.lock import Locked, exclusive
from pipeline.registry import Evidence, gate
from pipeline.uncertainty import Comparison, Interval, Predictions, compare


def _versus(value: float, low: float, high: float, metric: str = "rmse") -> Comparison:
    return Comparison(metric, Interval(value, low, high), 0.95, 20, 1000)


BASE = {"unpenalized": _versus(0.01, -0.05, 0.07), "lasso_guess": _versus(0.2, 0.1, 0.3)}


@pytest.mark.parametrize(
    ("baselines", "champion", "min_improvement", "status"),
    [
        (BASE, None, 0.0, "promoted"),  # first model, no baseline significantly better
        ({"unpenalized": _versus(-0.01, -0.06, 0.04)}, None, 0.0, "promoted"),  # worse by noise
        ({"unpenalized": _versus(-0.1, -0.15, -0.05)}, None, 0.0, "rejected"),  # surely worse
        (BASE, _versus(0.1, 0.05, 0.15), 0.0, "promoted"),  # surely better than the champion
        (BASE, _versus(0.02, -0.01, 0.05), 0.0, "kept"),  # better by noise only
        (BASE, _versus(0.1, 0.05, 0.15), 0.08, "kept"),  # better, not surely by min_improvement
        (BASE, _versus(0.2, 0.1, 0.3), 0.08, "promoted"),
        ({"unpenalized": _versus(-0.2, -0.3, -0.1)}, _versus(0.5, 0.4, 0.6), 0.0, "rejected"),
    ],
)
def test_the_gate_acts_on_intervals_not_point_estimates(
    baselines, champion, min_improvement, status
):
    evidence = Evidence("rmse", 1.0, baselines, champion)
    result, reason = gate(evidence, min_improvement=min_improvement)
    assert result == status, reason
    if champion is not None and status != "rejected":
        assert "interval" in reason  # the reason shows the interval it acted on


def test_a_nan_score_never_wins_and_a_nan_champion_does_not_block():
    assert gate(Evidence("rmse", float("nan"), BASE), min_improvement=0)[0] == "rejected"
    nan = _versus(float("nan"), float("nan"), float("nan"))
    assert gate(Evidence("rmse", 0.9, BASE, nan), min_improvement=0)[0] == "promoted"


def _predictions(rng, y, errors) -> Predictions:
    return Predictions(y, y + rng.permutation(errors))


def _compare(a: Predictions, b: Predictions, seed: int) -> Comparison:
    values = {k: regression_metrics(p.y, p.values)["rmse"] for k, p in (("a", a), ("b", b))}
    return compare(
        "rmse", a, b, value_a=values["a"], value_b=values["b"], n_resamples=500, level=0.95,
        seed=seed,
    )  # fmt: skip


@pytest.mark.parametrize("data_seed", range(8))
def test_a_challenger_equal_to_the_champion_up_to_noise_is_never_promoted_or_rejected(data_seed):
    """The same errors on other rows: equal holdout RMSE, differences that are only noise."""
    rng = np.random.default_rng(data_seed)
    y = rng.normal(size=20)
    errors = rng.normal(scale=0.5, size=20)
    champion, challenger, baseline = (_predictions(rng, y, errors) for _ in range(3))
    for seed in range(5):
        evidence = Evidence(
            "rmse",
            regression_metrics(y, challenger.values)["rmse"],
            {"unpenalized": _compare(challenger, baseline, seed)},
            _compare(challenger, champion, seed),
        )
        status, reason = gate(evidence, min_improvement=0.0)
        assert status == "kept", reason


@pytest.mark.parametrize("data_seed", range(4))
def test_a_clearly_better_challenger_is_promoted_and_a_clearly_worse_one_rejected(data_seed):
    rng = np.random.default_rng(data_seed)
    y = rng.normal(size=40)
    good = Predictions(y, y + rng.normal(scale=0.1, size=40))
    bad = Predictions(y, y + rng.normal(scale=1.0, size=40))
    evidence = Evidence(
        "rmse", 0.1, {"unpenalized": _compare(good, bad, 0)}, _compare(good, bad, 0)
    )
    assert gate(evidence, min_improvement=0.0)[0] == "promoted"
    worse = Evidence("rmse", 1.0, {"unpenalized": _compare(bad, good, 0)})
    status, reason = gate(worse, min_improvement=0.0)
    assert status == "rejected" and "significantly worse than the baseline unpenalized" in reason


def _hold(path, ready, release):
    with exclusive(path):
        ready.set()
        release.wait(30)


def test_lock_is_exclusive_across_processes_and_released_when_the_holder_dies(tmp_path):
    path = tmp_path / "retrain.lock"
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(path, ready, release))
    holder.start()
    assert ready.wait(30)
    with pytest.raises(Locked, match=f"pid {holder.pid}"), exclusive(path):
        pass
    holder.kill()  # SIGKILL: the kernel releases the lock
    holder.join(30)
    deadline = time.monotonic() + 10
    while True:
        try:
            with exclusive(path):
                break
        except Locked:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_the_required_baselines_are_baselines_the_report_scores():
    from pipeline import evaluate, registry
    from pipeline.config import Task

    for task in Task.regression, Task.classification:
        names = set(evaluate.baseline_candidates(task, 0.1))
        assert set(registry.REQUIRED_BASELINES[task]) <= names
    assert set(registry.REQUIRED_BASELINES[Task.regression]) == set(
        evaluate.baseline_candidates(Task.regression, 0.1)
    )
