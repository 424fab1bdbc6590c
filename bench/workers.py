"""Trials per second with 1 and 2 worker processes on one PostgreSQL study.

Starts PostgreSQL as the tests do (``pg_helpers``), then runs the same study twice on empty
databases (a PostgreSQL Optuna storage and a PostgreSQL MLflow store): once with one
``job=worker`` process, once with two started together. Prints a markdown table and writes
JSON (``--out``, default ``outputs/bench/workers.json``).

Two rates per run: *search* counts from the first trial's start to the last trial's end
(Optuna's own timestamps: what the workers deliver once running), *wall* from launching the
processes to the last one exiting (start-up, about 5 s of imports, included). The ratio is
the 2-worker rate over the 1-worker rate from the same invocation.

    .venv/bin/python bench/workers.py [--trials 40] [--out PATH] [override ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

# pg_helpers starts PostgreSQL as the tests do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pg_helpers

from pipeline.config import PROJECT_ROOT


def _study_span(url: str) -> tuple[int, float]:
    """Complete trials and seconds from the first trial's start to the last one's end."""
    import optuna
    from sqlalchemy.pool import NullPool

    storage = optuna.storages.RDBStorage(url, engine_kwargs={"poolclass": NullPool})
    (summary,) = optuna.get_all_study_summaries(storage, include_best_trial=False)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    return len(trials), (end - start).total_seconds()


def run(pg: pg_helpers.Postgres, workers: int, trials: int, overrides: list[str]) -> dict:
    optuna_db = pg.create_database("bench_optuna")
    mlflow_db = pg.create_database("bench_mlflow")
    env = {
        **os.environ,
        "REGTUNE_STORAGE": pg.url(optuna_db),
        "MLFLOW_TRACKING_URI": pg.url(mlflow_db),
    }
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        procs = []
        start = time.perf_counter()
        for i in range(workers):
            args = [
                sys.executable,
                "-m",
                "pipeline",
                "job=worker",
                "search=distributed",
                "tracking=server",
                f"search.n_trials={trials}",
                "search.progress_bar=false",
                f"store_dir={tmp}/m{i}",
                f"hydra.run.dir={tmp}/m{i}/outputs",
                *overrides,
            ]
            procs.append(
                subprocess.Popen(
                    args,
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for proc in procs:
            _, err = proc.communicate(timeout=3600)
            if proc.returncode != 0:
                raise SystemExit(f"a worker failed ({proc.returncode}):\n{err[-2000:]}")
        wall = time.perf_counter() - start
    complete, span = _study_span(pg.url(optuna_db))
    return {
        "workers": workers,
        "trials": complete,
        "search_s": round(span, 3),
        "wall_s": round(wall, 3),
        "trials_per_s": round(complete / span, 4),
        "wall_trials_per_s": round(complete / wall, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40, help="the study's budget (default 40)")
    parser.add_argument("--out", default="outputs/bench/workers.json", help="where the JSON goes")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. data=diabetes")
    args = parser.parse_args()

    pg = pg_helpers.start()
    try:
        runs = [run(pg, n, args.trials, args.overrides) for n in (1, 2)]
    finally:
        pg.drop_databases()
        pg.stop()
    one, two = runs
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "overrides": args.overrides,
        "runs": runs,
        "ratio": round(two["trials_per_s"] / one["trials_per_s"], 3),
        "wall_ratio": round(two["wall_trials_per_s"] / one["wall_trials_per_s"], 3),
    }
    print(f"PostgreSQL study, {args.trials} trials, {os.cpu_count()} CPUs {args.overrides or ''}")
    print()
    print("| workers | search s | trials/s (search) | wall s | trials/s (wall) |")
    print("|---:|---:|---:|---:|---:|")
    for r in runs:
        print(
            f"| {r['workers']} | {r['search_s']:.1f} | {r['trials_per_s']:.2f} "
            f"| {r['wall_s']:.1f} | {r['wall_trials_per_s']:.2f} |"
        )
    print()
    print(
        f"2 workers / 1 worker: {result['ratio']:.2f}x (search), {result['wall_ratio']:.2f}x (wall)"
    )
    out = Path(args.out)
    out = out if out.is_absolute() else Path.cwd() / out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
