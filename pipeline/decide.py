"""The registry step of a tuning job: register the study's best model, gate it, record why."""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from typing import TYPE_CHECKING

from pipeline import config, interrupt, registry, tracking
from pipeline.summary import Promotion, StudySummary

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.data import Dataset
    from pipeline.split import Split

log = logging.getLogger(__name__)


def promote(
    cfg: Config,
    tracker: tracking.Tracker,
    summary: StudySummary,
    *,
    dataset: Dataset,
    parts: Split,
    digests: dict[str, str],
) -> StudySummary:
    """Register the best model as challenger, let the gate decide, record it; the summary
    with the decision added."""
    interrupt.check()  # a signal during the search stops here: no alias moves
    name = config.model_name(cfg, dataset.name)
    metric = cfg.registry.metric or config.default_gate_metric(dataset.task, len(dataset.classes))
    holdout_metrics = {f"test_{k}": v for k, v in summary.holdout["best"].items()}
    decision = registry.promote(
        tracker,
        name=name,
        metric=metric,
        min_improvement=cfg.registry.min_improvement,
        summary=summary,
        version_tags={
            **digests,
            **tracking.git_tags(config.PROJECT_ROOT),
            "cv_score": summary.best.cv_score,
            **holdout_metrics,
            "parent_run_id": summary.parent_run_id,
            "study": summary.study,
        },
        parts=parts,
        task=dataset.task,
        force=cfg.registry.force,
    )
    scores = {f"registry_challenger_{metric}": decision.challenger_score}
    if decision.champion_score is not None:
        scores[f"registry_champion_{metric}"] = decision.champion_score
    tracker.log_decision(
        summary.parent_run_id,
        tags={
            "promotion": decision.status,
            "promotion_reason": decision.reason,
            "registry.model": f"{name}/{decision.version}",
        },
        metrics=scores,
    )
    log.info("registry: %s v%s %s: %s", name, decision.version, decision.status, decision.reason)
    return replace(summary, promotion=Promotion(model=name, **asdict(decision)))
