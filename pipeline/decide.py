"""The registry step of a tuning job: register the study's best model, gate it, record why."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from pipeline import config, evaluate, interrupt, model_store, progress, registry, tracking
from pipeline.summary import Promotion, StudySummary
from pipeline.uncertainty import Predictions

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.data import Dataset
    from pipeline.search import CVSetup
    from pipeline.split import Split

log = logging.getLogger(__name__)


def promote(
    cfg: Config,
    tracker: tracking.Tracker,
    summary: StudySummary,
    *,
    dataset: Dataset,
    parts: Split,
    setup: CVSetup,
    digests: dict[str, str],
    predictions: dict[str, Predictions] | None = None,
) -> StudySummary:
    """Register the best model as challenger, let the gate decide, record it; the summary
    with the decision added. ``predictions``: of "best" and the baselines, on the holdout
    (computed again when not given, for a finished study's summary)."""
    interrupt.check()  # a signal during the search stops here: no alias moves
    name = config.model_name(cfg, dataset.name)
    metric = cfg.registry.metric or config.default_gate_metric(dataset.task, len(dataset.classes))
    with progress.phase(f"registry: registering the model as {name}; the promotion gate"):
        decision, evidence = registry.promote(
            tracker,
            name=name,
            metric=metric,
            min_improvement=cfg.registry.min_improvement,
            summary=summary,
            version_tags=_version_tags(summary, digests),
            X_test=parts.X_test,
            predictions=predictions or _predictions(cfg, tracker, summary, parts, setup),
            bootstrap=cfg.holdout,
            force=cfg.registry.force,
        )
    record = _record(decision, evidence)
    promotion = Promotion(model=name, **asdict(decision))
    tracker.tag_version(name, decision.version, record.tags)
    tracker.log_decision(
        summary.parent_run_id,
        promotion,
        tags={
            "promotion": decision.status,
            "promotion_reason": decision.reason,
            "registry.model": f"{name}/{decision.version}",
            **record.tags,
        },
        metrics=record.metrics,
    )
    log.info("registry: %s v%s %s: %s", name, decision.version, decision.status, decision.reason)
    return replace(summary, promotion=promotion)


def _version_tags(summary: StudySummary, digests: dict[str, str]) -> dict[str, object]:
    refitted = summary.registered_uri != summary.best_model_uri
    judged = {model_store.JUDGED_URI_TAG: summary.best_model_uri} if refitted else {}
    return {
        **digests,
        **tracking.git_tags(config.PROJECT_ROOT),
        "cv_score": summary.best.cv_score,
        **{f"test_{k}": v for k, v in summary.holdout["best"].items()},
        "fitted_on": _fitted_on(summary),
        **judged,  # what a later gate re-scores on its holdout (the refit saw those rows)
        "parent_run_id": summary.parent_run_id,
        "study": summary.study,
    }


def _fitted_on(summary: StudySummary) -> str:
    """Which rows the registered model was fitted on (its holdout metrics: the training fit's)."""
    data = summary.data
    if summary.registered_uri != summary.best_model_uri:
        gap = summary.n_fitted - data.n_train - data.n_test  # split.gap's rows
        parts = f"{data.n_train} training + {data.n_test} holdout"
        return f"all {summary.n_fitted} rows ({parts}{f' + {gap} between them' if gap else ''})"
    return f"the {data.n_train} training rows"


def _predictions(
    cfg: Config, tracker: tracking.Tracker, summary: StudySummary, parts: Split, setup: CVSetup
) -> dict[str, Predictions]:
    """Holdout predictions of the registered best model and of the baselines the gate needs
    (refitted: a finished study's summary may be all this job has of it)."""
    guesses = evaluate.baseline_candidates(setup.task, cfg.search.guess_alpha)
    models = {"best": tracker.load_model(summary.best_model_uri)}
    models.update({b: setup.fit(guesses[b]) for b in registry.REQUIRED_BASELINES[setup.task]})
    return evaluate.holdout_predictions(models, parts, task=setup.task)


@dataclass(frozen=True)
class _Record:
    tags: dict[str, str]
    metrics: dict[str, float]


def _record(decision, evidence: registry.Evidence) -> _Record:
    """The gate's test, confidence, rows and intervals: parent-run metrics and tags."""
    metric = decision.metric
    metrics = {f"registry_challenger_{metric}": decision.challenger_score}
    if decision.champion_score is not None:
        metrics[f"registry_champion_{metric}"] = decision.champion_score
    comparisons = dict(evidence.baselines)
    if evidence.champion is not None:
        comparisons["champion"] = evidence.champion
    tags = {}
    for other, versus in comparisons.items():
        g = versus.gain
        metrics.update(
            {
                f"registry_gain_vs_{other}": g.value,
                f"registry_gain_vs_{other}_low": g.low,
                f"registry_gain_vs_{other}_high": g.high,
            }
        )
        tags[f"gain_vs_{other}"] = versus.describe()
    for versus in list(comparisons.values())[:1]:
        tags["gate_test"] = (
            f"paired bootstrap of the {metric} gain, {versus.n_resamples} resamples of "
            f"{versus.n_rows} holdout rows, {versus.level:.0%} interval"
        )
    return _Record(tags, metrics)
