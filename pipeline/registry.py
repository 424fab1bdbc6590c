"""Champion and challenger: register each study's best model, promote it only if better.

The gate's arithmetic is plain Python here; the MLflow calls are the tracker's.
"""

from __future__ import annotations

import getpass
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline import interrupt
from pipeline.config import METRIC_DIRECTION, HoldoutConfig, Task
from pipeline.errors import UserError
from pipeline.summary import Decision

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.model_store import ModelStore
    from pipeline.summary import StudySummary
    from pipeline.tracking import Tracker
    from pipeline.uncertainty import Comparison, Predictions

log = logging.getLogger(__name__)

# Seconds to sleep between registering a version and moving any alias: lets a test kill
# the job at exactly that point. Never set in production.
PAUSE_AFTER_REGISTER = "PIPELINE_TEST_PAUSE_AFTER_REGISTER"
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous_champion"
# Baselines a challenger must not be worse than: every regression baseline (the guesses
# and no penalty), or for classification the majority-class dummy.
# (Names of ``evaluate.baseline_candidates``; spelled out so that rollback imports no metrics.)
REQUIRED_BASELINES = {
    Task.regression: ("lasso_guess", "ridge_guess", "unpenalized"),
    Task.classification: ("majority",),
}


@dataclass(frozen=True)
class Evidence:
    """What the gate weighs: the challenger's holdout score and its paired comparisons (on
    the same holdout rows) with each required baseline and with the champion, if any."""

    metric: str
    challenger: float
    baselines: dict[str, Comparison]
    champion: Comparison | None = None


def gate(evidence: Evidence, *, min_improvement: float) -> tuple[str, str]:
    """``(status, reason)`` from paired bootstrap comparisons at their confidence level.

    Rejected when significantly worse than a baseline (the whole interval of the gain is
    below zero); the first champion is promoted otherwise; a challenger replaces the
    champion only when the interval's lower end is above zero and at least
    ``min_improvement``; anything else keeps the champion, and the reason says why.
    """
    metric, challenger = evidence.metric, evidence.challenger
    if not math.isfinite(challenger):
        return "rejected", f"{metric} of the challenger is {challenger} on today's holdout"
    for name, versus in evidence.baselines.items():
        if versus.gain.high < 0:  # (NaN, when no resample could score both, is no evidence)
            return "rejected", (
                f"{metric} {challenger:.6g} is significantly worse than the baseline {name}: "
                f"gain {versus.describe()} over {versus.n_rows} holdout rows"
            )
    versus = evidence.champion
    if versus is None or not math.isfinite(versus.gain.value):
        closest = ""  # the baseline nearest to beating it, with the interval
        if evidence.baselines:
            name, c = min(evidence.baselines.items(), key=lambda kv: kv[1].gain.value)
            closest = f"; gain over {name} {c.describe()}"
        return "promoted", (
            f"first champion; no baseline is significantly better ({metric} "
            f"{challenger:.6g}{closest})"
        )
    verdict = f"{metric} {challenger:.6g}, gain over the champion {versus.describe()}"
    low = versus.gain.low
    if not math.isfinite(low):
        return "kept", f"{verdict}: the resamples cannot compare them"
    if low > 0 and low >= min_improvement:
        return "promoted", f"{verdict}: significantly better"
    if low <= 0:
        return "kept", f"{verdict}: not significantly better"
    return "kept", f"{verdict}: not surely better by min_improvement={min_improvement:g}"


def promote(
    tracker: Tracker,
    *,
    name: str,
    metric: str,
    min_improvement: float,
    summary: StudySummary,
    version_tags: dict[str, Any],
    X_test: pd.DataFrame,
    predictions: dict[str, Predictions],
    bootstrap: HoldoutConfig,
    force: bool = False,
) -> tuple[Decision, Evidence]:
    """Register the study's best model as ``challenger`` and move ``champion`` if it passes.

    ``predictions`` are the holdout predictions of ``"best"`` and of every baseline, for
    the holdout rows ``X_test``, which the champion (if any) predicts too.
    Safe to run again after a crash: the version of a run is registered once, and the
    champion alias moves last, so an interrupted promotion leaves the old champion in place.
    A version that was rolled back does not come back unless ``force``.
    """
    run_id = summary.parent_run_id
    version = tracker.register(summary.registered_uri, name, run_id=run_id, tags=version_tags)
    if pause := os.environ.get(PAUSE_AFTER_REGISTER):  # fault injection for the crash test
        time.sleep(float(pause))
    tracker.set_alias(name, CHALLENGER, version)
    challenger = summary.holdout["best"][metric]
    best = predictions["best"]
    task = Task.classification if best.classes is not None else Task.regression
    compare = _comparer(metric, best, challenger, bootstrap)
    baselines = {b: compare(predictions[b]) for b in REQUIRED_BASELINES[task]}
    evidence = Evidence(metric, challenger, baselines)
    interrupt.check()  # a signal while registering: the version stays a challenger
    champion = tracker.alias(name, CHAMPION)
    settled = _settled(tracker, name, version, champion, metric, challenger, force=force)
    if settled is not None:
        return settled, evidence
    versus_champion, unusable = _versus_champion(tracker, name, champion, X_test, best, compare)
    champion_score = None
    if versus_champion is not None:
        evidence = Evidence(metric, challenger, baselines, versus_champion)
        champion_score = challenger - _sign(metric) * versus_champion.gain.value
    status, reason = _verdict(evidence, unusable, min_improvement=min_improvement, force=force)
    champion_version = champion.version if champion is not None else None
    interrupt.check()  # a signal while the champion was scored: nothing decided yet
    _record(tracker, name, version, champion_version, status=status, reason=reason)
    decision = Decision(
        status, reason, metric, version, challenger, champion_version, champion_score
    )
    return decision, evidence


def _verdict(evidence: Evidence, unusable: str, *, min_improvement: float, force: bool):
    """The gate's ``(status, reason)``; ``unusable``: why the champion could not be scored."""
    if unusable and not force:  # a changed schema: never taken for an empty registry
        return (
            "rejected",
            f"{unusable}not promoted over it unseen "
            "(registry.force=true search.fresh=true promotes a new challenger)",
        )
    status, reason = gate(evidence, min_improvement=min_improvement)
    return status, unusable + reason


def _settled(
    tracker: Tracker, name: str, version: str, champion: Any, metric: str, score: float, *, force
) -> Decision | None:
    """The decision when there is nothing to weigh: the version is the champion already,
    or was rolled back (and ``force`` is off)."""
    if champion is not None and champion.version == version:
        reason = f"version {version} is already the champion"
        return Decision("kept", reason, metric, version, score, version, score)
    rolled_back_to = tracker.version_tags(name, version).get("rolled_back_to")
    if rolled_back_to and not force:
        reason = (
            f"version {version} was rolled back to version {rolled_back_to}; "
            "registry.force=true lets it compete again"
        )
        return Decision("kept", reason, metric, version, score)
    return None


def _sign(metric: str) -> float:
    return 1.0 if METRIC_DIRECTION[metric] else -1.0


def _comparer(metric: str, best: Predictions, score: float, bootstrap: HoldoutConfig):
    """Compare the challenger with another model's predictions on the same rows."""
    from pipeline import evaluate, uncertainty

    task = Task.classification if best.classes is not None else Task.regression

    def versus(other: Predictions) -> Comparison:
        other_score = evaluate.scores_of({"o": other}, task=task)["o"][metric]
        return uncertainty.compare(
            metric,
            best,
            other,
            value_a=score,
            value_b=other_score,
            n_resamples=bootstrap.n_bootstrap,
            level=bootstrap.confidence,
            seed=bootstrap.seed,
        )

    return versus


def _versus_champion(
    tracker: Tracker,
    name: str,
    champion: Any,
    X_test: pd.DataFrame,
    best: Predictions,
    compare: Callable[[Predictions], Comparison],
) -> tuple[Comparison | None, str]:
    """The challenger against the champion on today's holdout rows, or None and why the
    champion cannot be compared (it cannot score today's data)."""
    if champion is None:
        return None, ""
    from pipeline.uncertainty import Predictions

    try:
        model = tracker.load_judged(name, champion.version)  # not its refit on all rows
        if best.classes is not None:
            if not np.array_equal(np.asarray(model.classes_), best.classes):
                raise ValueError(f"its classes {list(model.classes_)} are not today's")
            preds = Predictions(best.y, model.predict_proba(X_test), best.classes)
        else:
            preds = Predictions(best.y, model.predict(X_test))
        return compare(preds), ""
    except (KeyError, ValueError, AttributeError, IndexError) as exc:
        why = " ".join(str(exc).split())  # one line: the reason is a tag and a log line
        return None, f"champion version {champion.version} cannot score today's data ({why}); "


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


def standing(tracker: ModelStore, name: str, version: str) -> str:
    """Where a version decided earlier stands now (rolled back, replaced, the champion)."""
    champion = tracker.alias(name, CHAMPION)
    now = f"the champion is version {champion.version}" if champion else "there is no champion"
    if not tracker.version_exists(name, version):
        return f"version {version} no longer exists; {now}"
    back_to = tracker.version_tags(name, version).get("rolled_back_to")
    if back_to:
        return f"version {version} was rolled back to version {back_to}; {now}"
    if champion is not None and champion.version == version:
        return f"version {version} is the champion"
    return now


def rollback(tracker: ModelStore, name: str, *, reason: str) -> tuple[str, str]:
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
