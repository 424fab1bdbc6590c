"""Text for people: the summary printed at the end of a job and the run's markdown description."""

from __future__ import annotations

from urllib.parse import urlencode

from pipeline.summary import BestTrial, Skipped, StudySummary


def _name(metric: str) -> str:
    return {"r2": "R2", "rmse": "RMSE", "mae": "MAE", "f1": "F1 macro", "roc_auc": "ROC AUC"}.get(
        metric, metric.replace("_", " ")
    )


def _fmt(value: float) -> str:
    """Six decimals below 10 (an R² of 0.999998 is not 1), five significant digits above."""
    if abs(value) < 10:
        return f"{value:.6f}".rstrip("0").rstrip(".") or "0"
    return f"{value:.5g}"


def _best_line(best: BestTrial) -> str:
    text = f"{best.penalty}  alpha={best.alpha:.4g}"
    if best.l1_ratio is not None:
        text += f"  l1_ratio={best.l1_ratio:.3g}"
    return text


def _span(bounds: list[float]) -> str:
    return f"{_fmt(bounds[0])} to {_fmt(bounds[1])}"


def _pick_line(rule: str, pick: BestTrial) -> str:
    nonzero = f", {pick.n_nonzero} non-zero" if pick.n_nonzero >= 0 else ""
    return (
        f"{rule:<7} {_best_line(pick)}  (trial {pick.trial}): "
        f"CV {pick.cv_score:.6g} ± {pick.cv_se:.2g} (SE){nonzero}"
    )


def _picks(summary: StudySummary) -> list[str]:
    """Each selection rule's pick, the refitted one marked."""
    lines = []
    for i, (rule, pick) in enumerate(summary.picks.items()):
        mark = "  <- refitted" if rule == summary.selected else ""
        lines.append(f"  {'picks' if i == 0 else '':<12}{_pick_line(rule, pick)}{mark}")
    return lines


def _names(names: list[str], most: int = 8) -> str:
    shown = ", ".join(names[:most]) or "none"
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _stability(summary: StudySummary) -> list[str]:
    """The features the folds' models always keep, and never do."""
    k = summary.n_splits
    return [
        f"  stability   in all {k} folds' models: {_names(summary.always_selected)}",
        f"              in none: {_names(summary.never_selected)}",
    ]


def _refitted(summary: StudySummary) -> list[str]:
    if summary.registered_uri == summary.best_model_uri:
        return []
    return [
        f"              the version: refitted on all {summary.n_fitted} rows; the metrics "
        f"above are of its fit on the {summary.data.n_train} training rows"
    ]


def summary_text(summary: StudySummary | Skipped) -> str:
    """A short, readable account of a finished study."""
    if isinstance(summary, Skipped):
        return f"Nothing to do: {summary.reason} (registry.force=true retrains)."
    best, holdout, trials, data = summary.best, summary.holdout, summary.trials, summary.data
    metrics = list(holdout["best"])
    reused = "  (already finished; search.fresh=true runs a new one)" if summary.reused else ""
    lines = [
        "",
        f"Study {summary.study}{reused}",
        f"  data        {data.name}: {data.n_train} training rows, "
        f"{data.n_test} holdout rows, {data.n_features} features",
        f"  trials      {trials['complete']} complete, {trials.get('pruned', 0)} pruned, "
        f"{trials['failed']} failed",
        f"  best        {_best_line(best)}  (trial {best.trial})",
        f"  CV score    {best.cv_score:.6g}  ({summary.scoring}, {summary.n_splits}-fold)",
        *_picks(summary),
        *_stability(summary),
        "",
        f"  {'holdout':<18}" + "".join(f"{_name(m):>10}" for m in metrics),
    ]
    for name, scores in holdout.items():
        lines.append(f"  {name:<18}" + "".join(f"{_fmt(scores[m]):>10}" for m in metrics))
    if summary.holdout_intervals:
        lines += [
            "",
            f"  {f'{summary.confidence:.0%} interval':<18}"
            + "".join(f"{_name(m):>22}" for m in metrics),
        ]
    for name, bounds in summary.holdout_intervals.items():
        lines.append(f"  {name:<18}" + "".join(f"{_span(bounds[m]):>22}" for m in metrics))
    promotion = summary.promotion
    if promotion:
        lines += [
            "",
            f"  registry    {promotion.model} v{promotion.version}: {promotion.status}",
            f"              {promotion.reason}",
            *_refitted(summary),
        ]
        if summary.standing:
            lines.append(f"              now: {summary.standing}")
    lines += [
        "",
        f"  MLflow run  {summary.parent_run_id}  (experiment {summary.experiment_name})",
        f"  Open it:    {summary.ui_command}, then {summary.ui_url}",
        f"  its trials  {runs_url(summary.ui_url, trials_of=summary.parent_run_id)}",
        f"  all studies {runs_url(summary.ui_url)}",
        "",
    ]
    return "\n".join(lines)


def runs_url(run_url: str, *, trials_of: str | None = None) -> str:
    """The MLflow UI's run list of the experiment of ``run_url`` (a run page): its studies,
    newest first, or the trials of one study, best CV score first."""
    experiment = run_url.partition("/runs/")[0]
    if trials_of is None:
        query = {"searchFilter": "tags.`pipeline.role` = 'study'"}
    else:
        query = {
            "searchFilter": f"tags.`mlflow.parentRunId` = '{trials_of}'",
            "orderByKey": "metrics.`cv_score_mean`",
            "orderByAsc": "false",
        }
    return f"{experiment}/runs?" + urlencode({"workflowType": "machine_learning", **query})


def description(summary: StudySummary) -> str:
    """Markdown for the parent run's description in the MLflow UI."""
    best, data, space, trials = summary.best, summary.data, summary.space, summary.trials
    metrics = list(summary.holdout["best"])
    bounds = summary.holdout_intervals
    rows = "\n".join(
        f"| {name} | "
        + " | ".join(
            f"{_fmt(scores[m])}" + (f" ({_span(bounds[name][m])})" if name in bounds else "")
            for m in metrics
        )
        + " |"
        for name, scores in summary.holdout.items()
    )
    return (
        f"**Best:** {_best_line(best)} (trial {best.trial}), CV {summary.scoring} "
        f"= {best.cv_score:.6g} over {summary.n_splits} folds"
        f" (selection rule: {summary.selected}).\n\n"
        + "".join(f"- {_pick_line(rule, p)}\n" for rule, p in summary.picks.items())
        + "\n"
        f"| holdout ({summary.confidence:.0%} interval) | "
        + " | ".join(_name(m) for m in metrics)
        + " |\n"
        "|---|" + "---|" * len(metrics) + "\n" + rows + "\n\n"
        f"**Search space:** penalties {', '.join(space.penalties)}; alpha in "
        f"[{space.alpha_low:g}, {space.alpha_high:g}] (log); l1_ratio in "
        f"[{space.l1_ratio_low:g}, {space.l1_ratio_high:g}] for elasticnet.  \n"
        f"**Budget:** {trials['complete']} complete trials, "
        f"{trials.get('pruned', 0)} pruned, {trials['failed']} failed.  \n"
        f"**Data:** {data.name} ({data.source}), digest "
        f"`{data.digest}`, {data.n_train} training / "
        f"{data.n_test} holdout rows."
    )
