from __future__ import annotations

import multiprocessing
import time

import pytest

from pipeline.lock import Locked, exclusive
from pipeline.registry import gate

BASE = {"unpenalized": 1.0, "lasso_guess": 1.2}


@pytest.mark.parametrize(
    ("challenger", "champion", "min_improvement", "status"),
    [
        (0.9, None, 0.0, "promoted"),  # first model, better than the baselines
        (1.0, None, 0.0, "promoted"),  # a tie with a baseline passes
        (1.1, None, 0.0, "rejected"),  # worse than the unpenalized model
        (0.8, 0.9, 0.0, "promoted"),
        (0.9, 0.9, 0.0, "kept"),  # not better
        (0.85, 0.9, 0.1, "kept"),  # better, but not by min_improvement
        (0.75, 0.9, 0.1, "promoted"),
        (1.1, 1.5, 0.0, "rejected"),  # beats the champion but not the baselines
    ],
)
def test_gate_for_a_lower_is_better_metric(challenger, champion, min_improvement, status):
    result, reason = gate(
        metric="rmse",
        challenger=challenger,
        champion=champion,
        baselines=BASE,
        min_improvement=min_improvement,
    )
    assert result == status, reason


def test_a_nan_score_never_wins_and_a_nan_champion_does_not_block():
    args = dict(metric="rmse", baselines=BASE, min_improvement=0.0)
    assert gate(challenger=float("nan"), champion=None, **args)[0] == "rejected"
    assert gate(challenger=0.9, champion=float("nan"), **args)[0] == "promoted"


def test_gate_for_a_higher_is_better_metric():
    args = dict(metric="roc_auc", baselines={"majority": 0.5}, min_improvement=0.0)
    assert gate(challenger=0.9, champion=0.8, **args)[0] == "promoted"
    assert gate(challenger=0.8, champion=0.9, **args)[0] == "kept"
    status, reason = gate(challenger=0.4, champion=None, **args)
    assert status == "rejected" and "majority" in reason


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
