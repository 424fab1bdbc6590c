"""The whole command a user runs against a whole scikit-learn process, on the same file.

For each dataset (D2: 100,000 x 100, D3: 500 x 5,000, as in bench/search.py) a Parquet
file with columns x0..x{p-1} and target ``y`` is written to a temporary directory. Then,
in alternation (ours first in odd repeats, scikit-learn first in even ones):

(a) ``python -m pipeline data=csv data.path=<file> data.target=y`` with default settings
    (50 trials, every trial logged with its model, review figures, registry on), each time
    on a fresh SQLite store in a fresh directory;
(b) one ``python -c`` process: read the same Parquet with pandas, hold out 20%
    (``train_test_split(random_state=42)``), fit
    ``make_pipeline(StandardScaler(), ElasticNetCV(l1_ratio=[.1,.5,.7,.9,.95,.99,1], cv=5,
    n_jobs=1))`` and score RMSE on the holdout.

Both are timed as whole processes (interpreter start-up and imports included), from launch
to exit. The medians and their ratio (a)/(b), measured in this one run, are reported. Where
(a)'s time goes is read from its log timestamps and its parent run's metrics:

    start-up       launch -> the "<data>: N rows, p features" line (imports, Hydra, load,
                   validate)
    prepare        -> start of the search (folds, Optuna study, parent run); the search
                   start is the end of the search minus the run's ``search_time_s``
    search         ``search_time_s`` (trials; the logger's workers start inside it)
    evidence       ``evidence_time_s``: the best model and baselines refitted and scored on
                   the holdout, review figures, the best model logged; while the logging
                   workers log the last trials
    logging wait   ``study_time_s - search_time_s - evidence_time_s``: trials still being
                   logged after that
    report         the rest until exit: trials of other clients logged, metrics and
                   summary, registry decision; split at the registry's log line into
                   "outcome" and "registry+exit"

    .venv/bin/python bench/end_to_end.py [--datasets D2,D3] [--repeats 3]
        [--out outputs/bench/end_to_end.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from search import datasets  # noqa: E402  (bench/search.py: the D2/D3 definitions)

PYTHON = sys.executable
L1_RATIOS = [0.1, 0.5, 0.7, 0.9, 0.95, 0.99, 1.0]
SKLEARN = """
import sys, time
import numpy as np, pandas as pd
from sklearn.linear_model import ElasticNetCV
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
frame = pd.read_parquet(sys.argv[1])
X, y = frame.drop(columns="y"), frame["y"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
model = make_pipeline(StandardScaler(), ElasticNetCV(l1_ratio=L1_RATIOS, cv=5, n_jobs=1))
model.fit(X_train, y_train)
cv = model[-1]
print(f"rmse={float(root_mean_squared_error(y_test, model.predict(X_test)))!r} "
      f"alpha={float(cv.alpha_)!r} l1_ratio={float(cv.l1_ratio_)!r}")
""".replace("L1_RATIOS", repr(L1_RATIOS))

LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[([\w.]+)\]\[(\w+)\] - (.*)$")
DATA_LINE = re.compile(r"^\S+: \d+ rows, \d+ features")
TRIAL_LINE = re.compile(r"^trial \d+ ")


def write_parquet(name: str, directory: Path) -> tuple[Path, tuple[int, int]]:
    X, y = datasets()[name]()
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["y"] = y
    path = directory / f"{name.lower()}.parquet"
    frame.to_parquet(path, index=False)
    return path, X.shape


def _stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def log_marks(stderr: str) -> dict[str, float]:
    """Unix times of the log lines that mark the stages."""
    marks: dict[str, float] = {}
    for line in stderr.splitlines():
        m = LINE.match(line)
        if m is None:
            continue
        t, logger, message = _stamp(m[1]), m[2], m[4]
        if DATA_LINE.match(message):
            marks.setdefault("data", t)
        elif logger == "pipeline.running" and TRIAL_LINE.match(message):
            marks.setdefault("first_trial", t)
            marks["last_trial"] = t
        elif message.startswith("search done"):
            marks["search_done"] = t
        elif message.startswith("registry:"):
            marks["registry"] = t
    return marks


def parent_metrics(store: Path) -> dict[str, float]:
    """The metrics of the study's parent run (experiment "regularization")."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    exp = client.get_experiment_by_name("regularization")
    runs = client.search_runs(
        [exp.experiment_id], filter_string="tags.`pipeline.role` = 'study'", max_results=5
    )
    if len(runs) != 1:
        raise RuntimeError(f"expected one parent run in {store}, found {len(runs)}")
    return dict(runs[0].data.metrics)


def run_ours(path: Path, work: Path) -> dict:
    store, outputs = work / "store", work / "outputs"
    cmd = [
        PYTHON, "-m", "pipeline", "data=csv", f"data.path={path}", "data.target=y",
        f"store_dir={store}", f"hydra.run.dir={outputs}", "search.progress_bar=false",
        "registry.enabled=true",
    ]  # fmt: skip
    launched = time.time()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    exited = launched + wall
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise RuntimeError(f"pipeline exited with {proc.returncode}: {' '.join(cmd)}")
    marks = log_marks(proc.stderr)
    metrics = parent_metrics(store)
    search_s, study_s = metrics["search_time_s"], metrics["study_time_s"]
    evidence_s = metrics.get("evidence_time_s", 0.0)
    # The search ends where its log says so ("search done", logged only if trials are still
    # pending), else at its last trial line; it started search_time_s before that.
    search_end = marks.get("search_done", marks.get("last_trial"))
    search_start = search_end - search_s
    study_end = search_start + study_s
    registry = marks.get("registry", exited)
    stages = {
        "startup_load_validate": marks["data"] - launched,
        "prepare": search_start - marks["data"],
        "search": search_s,
        "evidence": evidence_s,
        "logging_wait": study_s - search_s - evidence_s,
        "report_outcome": registry - study_end,
        "report_registry_exit": exited - registry,
    }
    return {
        "wall_s": wall,
        "stages_s": stages,
        "until_first_trial_line_s": marks["first_trial"] - launched,
        "trial_logging_s_mean": metrics.get("trial_logging_s_mean"),
        "test_rmse": metrics.get("test_rmse"),
        "best_cv_score": metrics.get("best_cv_score"),
        "n_trials_complete": metrics.get("n_trials_complete"),
    }


def run_sklearn(path: Path) -> dict:
    start = time.perf_counter()
    proc = subprocess.run(
        [PYTHON, "-c", SKLEARN, str(path)], cwd=ROOT, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise RuntimeError(f"the ElasticNetCV process exited with {proc.returncode}")
    fields = dict(item.split("=", 1) for item in proc.stdout.split())
    return {"wall_s": wall, **{k: float(v) for k, v in fields.items()}}


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def bench(name: str, repeats: int, tmp: Path) -> dict:
    path, shape = write_parquet(name, tmp)
    print(f"{name}: {shape[0]:,} x {shape[1]:,}, {path.stat().st_size / 1e6:.1f} MB Parquet",
          flush=True)  # fmt: skip
    ours, sk = [], []
    for i in range(repeats):
        order = ("ours", "sklearn") if i % 2 == 0 else ("sklearn", "ours")
        for which in order:
            if which == "ours":
                work = Path(tempfile.mkdtemp(dir=tmp))
                ours.append(run_ours(path, work))
                shutil.rmtree(work, ignore_errors=True)
                print(f"  [{i + 1}/{repeats}] ours    {ours[-1]['wall_s']:7.1f} s", flush=True)
            else:
                sk.append(run_sklearn(path))
                print(f"  [{i + 1}/{repeats}] sklearn {sk[-1]['wall_s']:7.1f} s", flush=True)
    stages = {k: statistics.median(r["stages_s"][k] for r in ours) for k in ours[0]["stages_s"]}
    ours_s, sk_s = _median(ours, "wall_s"), _median(sk, "wall_s")
    return {
        "dataset": name,
        "shape": list(shape),
        "repeats": repeats,
        "ours_s": ours_s,
        "sklearn_s": sk_s,
        "ratio": ours_s / sk_s,
        "ratios_per_repeat": [o["wall_s"] / s["wall_s"] for o, s in zip(ours, sk, strict=True)],
        "stages_median_s": stages,
        "until_first_trial_line_s": _median(ours, "until_first_trial_line_s"),
        "ours_runs": ours,
        "sklearn_runs": sk,
    }


def table(results: list[dict]) -> str:
    lines = [
        "| data | ours (s) | ElasticNetCV (s) | ratio ours/EN | per repeat | "
        "ours holdout RMSE | EN holdout RMSE |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in results:
        per = ", ".join(f"{x:.2f}" for x in r["ratios_per_repeat"])
        rmse_ours = statistics.median(o["test_rmse"] for o in r["ours_runs"])
        rmse_sk = statistics.median(s["rmse"] for s in r["sklearn_runs"])
        lines.append(
            f"| {r['dataset']} ({r['shape'][0]:,} x {r['shape'][1]:,}) | {r['ours_s']:.1f} | "
            f"{r['sklearn_s']:.1f} | **{r['ratio']:.2f}x** | {per} | {rmse_ours:.4g} | "
            f"{rmse_sk:.4g} |"
        )
    names = list(results[0]["stages_median_s"])
    lines += [
        "",
        "Where ours goes (medians, seconds; share of ours' median wall time):",
        "",
        "| data | " + " | ".join(names) + " | first trial line | logging s/trial (worker) |",
        "|---|" + "---:|" * (len(names) + 2),
    ]
    for r in results:
        cells = [
            f"{r['stages_median_s'][k]:.1f} ({r['stages_median_s'][k] / r['ours_s']:.0%})"
            for k in names
        ]
        per_trial = statistics.median(o["trial_logging_s_mean"] for o in r["ours_runs"])
        lines.append(
            f"| {r['dataset']} | " + " | ".join(cells)
            + f" | {r['until_first_trial_line_s']:.1f} | {per_trial:.3f} |"
        )  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="D2,D3")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs/bench/end_to_end.json")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_e2e_") as tmp:
        for name in args.datasets.split(","):
            results.append(bench(name.strip(), args.repeats, Path(tmp)))
            write(args.out, results)  # after each dataset: a long run keeps what it measured
    print()
    print(table(results))
    print(f"\nwritten: {args.out}")


def write(out: Path, results: list[dict]) -> None:
    payload = {
        "command": " ".join([Path(PYTHON).name, *sys.argv]),
        "sklearn_baseline": f"make_pipeline(StandardScaler(), ElasticNetCV(l1_ratio={L1_RATIOS},"
        " cv=5, n_jobs=1)), train_test_split(test_size=0.2, random_state=42)",
        "results": results,
    }
    out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
