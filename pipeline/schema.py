"""The schema check of a retraining job: today's feature columns against the champion's.

A column gone, a column new, or a column whose type changed (as MLflow's model signature
records types: long, double, string, boolean) means tomorrow's champion would be trained,
and judged, on another table than the one it replaces. The job stops before any run is
created (exit 65), unless ``registry.allow_schema_change=true`` accepts the new schema on
purpose; the change is then recorded on the registered version (tag ``schema_change``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pipeline.errors import SchemaChanged

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.data import Dataset
    from pipeline.tracking import Tracker

log = logging.getLogger(__name__)

TAG = "schema_change"


def difference(before: dict[str, str], now: dict[str, str]) -> str | None:
    """What changed from ``before`` to ``now`` (column -> type), in a few words; None."""
    gone = [c for c in before if c not in now]
    new = [c for c in now if c not in before]
    retyped = [f"{c!r} {before[c]} -> {now[c]}" for c in before if c in now and before[c] != now[c]]
    parts = []
    if gone:
        parts.append(f"column(s) {', '.join(map(repr, gone))} gone")
    if new:
        parts.append(f"new column(s) {', '.join(map(repr, new))}")
    if retyped:
        parts.append(f"type changed: {', '.join(retyped)}")
    return "; ".join(parts) or None


def _columns(dataset: Dataset) -> dict[str, str]:
    """Column -> type of today's features, as a model signature of them records types."""
    from pipeline import trial_log

    return {s["name"]: s["type"] for s in trial_log.signature(dataset.X, None).inputs.to_dict()}


def at_retraining(cfg: Config, tracker: Tracker, dataset: Dataset) -> dict[str, str]:
    """For a retraining job (``job=retrain``) with a champion: raise ``SchemaChanged`` if
    today's features are not the champion's, or with ``registry.allow_schema_change`` return
    the version tag that records the change ({} when nothing changed)."""
    from pipeline import config, registry

    if cfg.job != config.Job.retrain or not cfg.registry.enabled:
        return {}
    name = config.model_name(cfg, dataset.name)
    champion = tracker.alias(name, registry.CHAMPION)
    if champion is None:
        return {}
    before = tracker.input_columns(name, champion.version)
    change = None if before is None else difference(before, _columns(dataset))
    if change is None:
        return {}
    what = f"{name} v{champion.version}"
    if not cfg.registry.allow_schema_change:
        raise SchemaChanged(
            f"data: the columns of {dataset.source} are not the champion's ({what}): {change}; "
            "registry.allow_schema_change=true retrains on them"
        )
    log.warning("the columns changed since the champion %s: %s (accepted)", what, change)
    return {TAG: f"since {what}: {change}"}
