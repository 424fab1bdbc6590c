"""Champion and challenger: register each study's best model, promote it only if better.

The gate's arithmetic is plain Python here; the MLflow calls are the tracker's.
"""

from __future__ import annotations

import getpass
import logging
import math
import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipeline import evaluate
from pipeline.config import METRIC_DIRECTION, Task
from pipeline.errors import UserError
from pipeline.split import Split
from pipeline.summary import Decision

if TYPE_CHECKING:
    from pipeline.summary import StudySummary
    from pipeline.tracking import Tracker

log = logging.getLogger(__name__)

# Seconds to sleep between registering a version and moving any alias: lets a test kill
# the job at exactly that point. Never set in production.
PAUSE_AFTER_REGISTER = "PIPELINE_TEST_PAUSE_AFTER_REGISTER"
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous_champion"
# Baselines a challenger must not be worse than: every regression baseline (the guesses
# and no penalty), or for classification the majority-class dummy.
REQUIRED_BASELINES = {
    Task.regression: tuple(evaluate.baseline_candidates(Task.regression, 1.0)),
    Task.classification: ("majority",),
}


def gate(
    *,
    metric: str,
    challenger: float,
    champion: float | None,
    baselines: dict[str, float],
    min_improvement: float,
) -> tuple[str, str]:
    """``(status, reason)``: rejected if worse than a baseline, kept unless better enough.

    A tie with a baseline passes: the guesses are trials of the search, so a challenger
    equal to one is that guess, found best.
    """
    higher = METRIC_DIRECTION[metric]
    if not math.isfinite(challenger):
        return "rejected", f"{metric} of the challenger is {challenger} on today's holdout"
    if champion is not None and not math.isfinite(champion):
        champion = None  # a champion that cannot be scored does not block a good challenger

    def gain(a: float, b: float) -> float:
        return a - b if higher else b - a

    for name, score in baselines.items():
        if gain(challenger, score) < 0:
            return (
                "rejected",
                f"{metric} {challenger:.6g} is worse than the baseline {name} ({score:.6g})",
            )
    if champion is None:
        return "promoted", f"first champion; no baseline is better ({metric} {challenger:.6g})"
    delta = gain(challenger, champion)
    verdict = f"{metric} {challenger:.6g} vs champion {champion:.6g} on today's holdout"
    if delta > 0 and delta >= min_improvement:
        return "promoted", f"{verdict}: better by {delta:.6g}"
    if delta <= 0:
        return "kept", f"{verdict}: not better than the champion"
    return (
        "kept",
        f"{verdict}: better by {delta:.6g}, less than min_improvement={min_improvement:g}",
    )


def promote(
    tracker: Tracker,
    *,
    name: str,
    metric: str,
    min_improvement: float,
    summary: StudySummary,
    version_tags: dict[str, Any],
    parts: Split,
    task: Task,
    force: bool = False,
) -> Decision:
    """Register the study's best model as ``challenger`` and move ``champion`` if it passes.

    Safe to run again after a crash: the version of a run is registered once, and the
    champion alias moves last, so an interrupted promotion leaves the old champion in place.
    A version that was rolled back does not come back unless ``force``.
    """
    run_id = summary.parent_run_id
    version = tracker.register(summary.best_model_uri, name, run_id=run_id, tags=version_tags)
    if pause := os.environ.get(PAUSE_AFTER_REGISTER):  # fault injection for the crash test
        time.sleep(float(pause))
    tracker.set_alias(name, CHALLENGER, version)
    challenger = summary.holdout["best"][metric]
    baselines = {b: summary.holdout[b][metric] for b in REQUIRED_BASELINES[task]}
    champion = tracker.alias(name, CHAMPION)
    if champion is not None and champion.version == version:
        reason = f"version {version} is already the champion"
        return Decision("kept", reason, metric, version, challenger, version, challenger)
    rolled_back_to = tracker.version_tags(name, version).get("rolled_back_to")
    if rolled_back_to and not force:
        reason = (
            f"version {version} was rolled back to version {rolled_back_to}; "
            "registry.force=true lets it compete again"
        )
        return Decision("kept", reason, metric, version, challenger)
    champion_score, unusable = _champion_score(tracker, name, champion, parts, task, metric)
    status, reason = gate(
        metric=metric,
        challenger=challenger,
        champion=champion_score,
        baselines=baselines,
        min_improvement=min_improvement,
    )
    reason = unusable + reason
    champion_version = champion.version if champion is not None else None
    _record(tracker, name, version, champion_version, status=status, reason=reason)
    return Decision(status, reason, metric, version, challenger, champion_version, champion_score)


def _champion_score(
    tracker: Tracker, name: str, champion: Any, parts: Split, task: Task, metric: str
) -> tuple[float | None, str]:
    """The champion's score on today's holdout, or None and why it cannot be scored."""
    if champion is None:
        return None, ""
    try:
        model = tracker.load_model(f"models:/{name}/{champion.version}")
        return evaluate.holdout_scores({"c": model}, parts, task=task)["c"][metric], ""
    except (KeyError, ValueError, AttributeError) as exc:
        return None, f"champion version {champion.version} cannot score today's data ({exc}); "


def _record(
    tracker: Tracker,
    name: str,
    version: str,
    champion_version: str | None,
    *,
    status: str,
    reason: str,
) -> None:
    """Tag the versions with the decision; on promotion, move ``champion`` last."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    tracker.tag_version(name, version, {"promotion": status, "promotion_reason": reason})
    if status != "promoted":
        return
    if champion_version is not None:
        tracker.tag_version(name, champion_version, {"replaced_by": version, "replaced_at": now})
        tracker.tag_version(name, version, {PREVIOUS: champion_version})
    tracker.tag_version(name, version, {"promoted_at": now})
    tracker.set_alias(name, CHAMPION, version)  # last: the one step that changes serving


def rollback(tracker: Tracker, name: str, *, reason: str) -> tuple[str, str]:
    """Point ``champion`` back at the version it replaced; return (from, to) versions."""
    champion = tracker.alias(name, CHAMPION)
    if champion is None:
        raise UserError(f"registry.model_name: model {name!r} has no champion to roll back")
    previous = champion.tags.get(PREVIOUS)
    if not previous:
        raise UserError(
            f"registry.model_name: champion version {champion.version} of {name!r} "
            "replaced no earlier champion; nothing to roll back to"
        )
    record = {
        "rollback_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rollback_by": getpass.getuser(),
        "rollback_reason": reason or "(none given)",
    }
    tracker.tag_version(name, champion.version, {**record, "rolled_back_to": previous})
    tracker.tag_version(name, previous, {**record, "restored_from": champion.version})
    tracker.set_alias(name, CHAMPION, previous)
    log.info("champion of %s moved back from version %s to %s", name, champion.version, previous)
    return champion.version, previous
