"""What a study's parent run receives at the end: the chosen model as the holdout judged
it, the evidence for it, and the model the registry takes: by default the same candidate
refitted on every row of the file, holdout included (as AutoML tools' "refit full" does),
so that the registered model does not waste a fifth of a small table."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pipeline import config, progress, stores, tracking

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from pipeline.models import Candidate
    from pipeline.outcome import Job


@dataclass(frozen=True)
class Published:
    model_uri: str  # the fit on the training rows, which the holdout metrics are of
    registered_uri: str  # what the registry takes: the refit on all rows, or model_uri
    n_fitted: int  # the rows the registered model was fitted on


def evidence(
    job: Job, candidate: Candidate, model: Pipeline, params, tables, figures: dict[str, Any]
) -> Published:
    """Log the model, its params, tables, figures, config and inputs on the parent run; then,
    if the registry takes a refit on all rows, that refit."""
    example = job.parts.X_train.head(5)
    with progress.phase("report: logging the model, tables and figures on the parent run"):
        uri = job.tracker.log_evidence(
            job.parent,
            params=params,
            best_model=model,
            example=example,
            tables=tables,
            figures=figures,
            config_yaml=config.to_yaml(stores.public_config(job.cfg)),
            dataset=job.dataset,
            train=(job.parts.X_train, job.parts.y_train),
            holdout=(job.parts.X_test, job.parts.y_test),
        )
    n_train = len(job.parts.X_train)
    if not (job.cfg.registry.enabled and job.cfg.registry.refit_all_rows):
        return Published(uri, uri, n_train)
    n_all = len(job.dataset.X)
    with progress.phase(f"report: refitting it on all {n_all} rows for the registry"):
        refit = all_rows(job, candidate)
        logged = job.tracker.log_model(
            job.parent,
            refit,
            name="model_all_rows",
            signature=tracking.signature(example, refit.predict(example)),
            input_example=example,
        )
    return Published(uri, logged.model_uri, n_all)


def all_rows(job: Job, candidate: Candidate) -> Pipeline:
    """``candidate``'s pipeline fitted on every row (training, holdout, and with
    ``split.gap`` the rows between them), by the solvers the search's CV judged it with
    (scikit-learn's saga and lbfgs stop elsewhere)."""
    X, y = job.dataset.X, job.dataset.y
    return replace(job.setup, X=X, y=y, folds=()).fit(candidate)
