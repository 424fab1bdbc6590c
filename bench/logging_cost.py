"""Milliseconds per child run: our trial logger against a bare ``MlflowClient`` loop.

Both write the same content per trial: a child run of the study's parent run (run name,
the trial's tags), its params and CV metrics in one ``log_batch`` (metrics linked to the
model), the model (``mlflow.sklearn.log_model``, skops, same signature, same pip
requirements, same params), a coefficients CSV and SVG. 50 real trials (``search.evaluate``
on ``CVSetup`` folds) of a Lasso pipeline on 100 rows x 20 features; each method writes to
a fresh SQLite store (``sqlite:///<tmp>/mlflow.db``, artifacts under ``<tmp>/artifacts``).

- ours: ``Tracker.trial_logger(parent, ..., log_models=True)`` as a context manager,
  ``submit`` per trial, timed from entering to leaving the context (its worker processes'
  start-up included). Also its workers' own seconds per run, ``logger.seconds /
  logger.count`` (they run ``pipeline.trial_log.WORKERS`` at once, so wall time per run
  is lower than that once they are up).
- bare: a loop in this process: ``client.create_run`` (parent tag, trial tags and the
  system tags MLflow's ``start_run`` adds, resolved once up front), ``log_model(...,
  run_id=...)``, ``client.log_batch``, ``client.log_artifact`` x2, ``client.set_terminated``.

Rounds alternate which goes first; medians and ratios of the same run are reported.

    .venv/bin/python bench/logging_cost.py [--rounds 3] [--trials 50]
        [--out outputs/bench/logging.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline import evaluate as coefficients_of
from pipeline import plots
from pipeline.config import Penalty, SeedRegressionData
from pipeline.data import load
from pipeline.log_pool import WORKERS
from pipeline.model_store import SKOPS_TRUSTED_TYPES
from pipeline.models import Candidate
from pipeline.search import CVSetup, TrialResult, evaluate
from pipeline.tracking import Tracker, mlflow
from pipeline.trial_log import run_name, signature, trial_tags

ROOT = Path(__file__).resolve().parents[1]
ROWS, FEATURES = 100, 20


def setup() -> CVSetup:
    ds = load(SeedRegressionData(n_samples=ROWS, n_features=FEATURES, n_informative=10))
    return CVSetup.build(
        ds.X,
        ds.y,
        n_splits=5,
        random_state=0,
        scoring="neg_root_mean_squared_error",
        numeric=list(ds.X.columns),
        categorical=[],
        max_iter=1000,
        tol=1e-4,
    )


def trials(cv: CVSetup, n: int) -> list[TrialResult]:
    alphas = np.geomspace(1e-3, 1.0, n)
    return [evaluate(cv, Candidate(Penalty.l1, float(a)), number=i) for i, a in enumerate(alphas)]


def tracker(root: Path) -> Tracker:
    return Tracker(
        uri=f"sqlite:///{root / 'mlflow.db'}",
        artifact_location=(root / "artifacts").as_uri(),
        experiment_name="logging_cost",
    )


def ours(root: Path, cv: CVSetup, results: list[TrialResult]) -> dict:
    t = tracker(root)
    parent = t.open_parent(None, run_name="ours", tags={}, params={})
    start = time.perf_counter()
    with t.trial_logger(
        parent, example_X=cv.X.head(5), example_y=cv.y.head(5), log_models=True
    ) as logger:
        for r in results:
            logger.submit(r)
    wall = time.perf_counter() - start
    assert logger.count == len(results), logger.count
    _check(t, parent, len(results))
    return {"wall_s": wall, "worker_s_per_run": logger.seconds / logger.count, "parent": parent}


def bare(root: Path, cv: CVSetup, results: list[TrialResult]) -> dict:
    from mlflow.entities import Metric, Param
    from mlflow.tracking.context.registry import resolve_tags
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    t = tracker(root)  # the same experiment setup and SQLite settings; then the client only
    client = t.client
    parent = t.open_parent(None, run_name="bare", tags={}, params={})
    requirements = t.pip_requirements
    sig = signature(cv.X.head(5), cv.y.head(5).to_numpy())
    system_tags = resolve_tags()  # what start_run adds to each run, resolved once here
    start = time.perf_counter()
    for r in results:
        tags = {**system_tags, MLFLOW_PARENT_RUN_ID: parent, **trial_tags(r)}
        run_id = client.create_run(t.experiment_id, run_name=run_name(r), tags=tags).info.run_id
        params = {k: "" if v is None else str(v) for k, v in r.candidate.params().items()}
        info = mlflow.sklearn.log_model(
            r.estimator,
            name="model",
            run_id=run_id,
            signature=sig,
            pip_requirements=requirements,
            params=params,
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
        )
        coefs = coefficients_of.coefficients(r.estimator)
        metrics = {
            "cv_score_mean": r.cv_score_mean,
            "cv_score_std": r.cv_score_std,
            "train_score_mean": float(np.mean(r.train_scores)),
            **{f"cv_score_fold{i}": float(s) for i, s in enumerate(r.cv_scores)},
            "n_nonzero_coefs": coefficients_of.n_nonzero(coefs),
            "fit_time_s": r.fit_time_s,
            "converged": float(r.converged),
        }
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[
                Metric(k, float(v), now, 0, model_id=info.model_id, run_id=run_id)
                for k, v in metrics.items()
            ],
            params=[Param(k, v) for k, v in params.items()],
        )
        title = f"Coefficients, trial {r.number}: {r.candidate.label}"
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "coefficients.csv").write_text(coefs.to_csv())
            Path(tmp, "coefficients.svg").write_text(plots.coefficient_svg(coefs, title=title))
            client.log_artifact(run_id, str(Path(tmp, "coefficients.csv")))
            client.log_artifact(run_id, str(Path(tmp, "coefficients.svg")))
        client.set_terminated(run_id)
    wall = time.perf_counter() - start
    _check(t, parent, len(results))
    return {"wall_s": wall, "parent": parent}


def _check(t: Tracker, parent: str, n: int) -> None:
    runs = t.trial_runs(parent)
    assert len(runs) == n and all(r.info.status == "FINISHED" for r in runs), len(runs)


def content(t: Tracker, parent: str) -> dict:
    """What one child run holds: tag, param and metric keys, artifacts, logged models."""
    run = min(t.trial_runs(parent), key=lambda r: r.info.start_time)
    models = mlflow.search_logged_models(
        experiment_ids=[t.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}'",
        output_format="list",
    )
    return {
        "tags": sorted(run.data.tags),
        "params": sorted(run.data.params),
        "metrics": sorted(run.data.metrics),
        "artifacts": sorted(a.path for a in t.client.list_artifacts(run.info.run_id)),
        "logged_models": len(models),
    }


def compare(root_ours: Path, root_bare: Path, p_ours: str, p_bare: str) -> dict:
    a, b = content(tracker(root_ours), p_ours), content(tracker(root_bare), p_bare)
    return {
        key: {"same": a[key] == b[key], "ours": a[key], "bare": b[key]}
        if a[key] != b[key]
        else {"same": True}
        for key in a
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs/bench/logging.json")
    args = parser.parse_args()

    cv = setup()
    results = trials(cv, args.trials)
    tmp = Path(tempfile.mkdtemp(prefix="bench_logging_"))
    try:
        bare(tmp / "warm_bare", cv, results[:3])  # imports and first-call caches
        ours(tmp / "warm_ours", cv, results[:3])
        runs: dict[str, list[dict]] = {"ours": [], "bare": []}
        for i in range(args.rounds):
            order = ("ours", "bare") if i % 2 == 0 else ("bare", "ours")
            for name in order:
                root = tmp / f"{name}{i}"
                runs[name].append((ours if name == "ours" else bare)(root, cv, results))
                print(f"  round {i + 1}: {name} {runs[name][-1]['wall_s']:.2f} s", flush=True)
        same = compare(
            tmp / "ours0", tmp / "bare0", runs["ours"][0]["parent"], runs["bare"][0]["parent"]
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    n = len(results)
    ours_wall = statistics.median(r["wall_s"] for r in runs["ours"])
    bare_wall = statistics.median(r["wall_s"] for r in runs["bare"])
    worker = statistics.median(r["worker_s_per_run"] for r in runs["ours"])
    figures = {
        "trials": n,
        "rounds": args.rounds,
        "workers": WORKERS,
        "ours_worker_ms_per_run": worker * 1000,
        "ours_wall_ms_per_run": ours_wall / n * 1000,
        "bare_ms_per_run": bare_wall / n * 1000,
        "ratio_worker_per_run_to_bare": worker / (bare_wall / n),
        "ratio_wall_to_bare": ours_wall / bare_wall,
        "ours_wall_s": [r["wall_s"] for r in runs["ours"]],
        "ours_worker_ms_per_run_each": [r["worker_s_per_run"] * 1000 for r in runs["ours"]],
        "bare_wall_s": [r["wall_s"] for r in runs["bare"]],
        "content": same,
    }
    print()
    print("| measure | ours | bare loop | ratio ours/bare |")
    print("|---|---:|---:|---:|")
    print(
        f"| ms per child run (ours: worker's own time) | {worker * 1000:.0f} | "
        f"{bare_wall / n * 1000:.0f} | **{figures['ratio_worker_per_run_to_bare']:.2f}x** |"
    )
    print(
        f"| wall for {n} trials, s (ours: enter to exit, {WORKERS} workers) | {ours_wall:.2f} | "
        f"{bare_wall:.2f} | **{figures['ratio_wall_to_bare']:.2f}x** |"
    )
    print(f"| wall ms per run | {ours_wall / n * 1000:.0f} | {bare_wall / n * 1000:.0f} | |")
    diffs = {k: v for k, v in same.items() if not v["same"]}
    print(f"\nsame content per child run: {diffs or 'yes'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": " ".join(sys.argv), **figures}, indent=2))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
