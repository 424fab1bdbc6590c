"""The search stage against scikit-learn's CV tuners, GridSearchCV and a naive Optuna loop.

Run with ``make bench`` (not part of ``make test``). Every method sees the same data and
the same 5 folds; each is timed in this one process, repeated, and the median reported;
ratios are ours to each baseline, measured in the same run. A baseline's score is the CV
score (our scorer, our folds, standardization inside the pipeline) of the hyperparameters
it chose, so every score in a table means the same thing.

    .venv/bin/python bench/search.py [--datasets D1,D2,D3,D4] [--repeats 3]
        [--memory-rows 1000000] [--out outputs/bench/search.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import (
    ElasticNet,
    ElasticNetCV,
    Lasso,
    LassoCV,
    LogisticRegression,
    LogisticRegressionCV,
    Ridge,
    RidgeCV,
)
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from pipeline import tracking
from pipeline.config import Penalty, SearchConfig, Task
from pipeline.models import Candidate, make_estimator
from pipeline.search import CVSetup, SearchSpace
from pipeline.study import Budget, Study

N_TRIALS = SearchConfig().n_trials
ALPHAS = np.logspace(np.log10(SearchConfig().alpha_low), np.log10(SearchConfig().alpha_high), 30)
SLOW_S = 30.0  # a method slower than this is timed once
OURS_REPEATS = 7  # ours, logging on and off in turn: cheap, and their ratio is a floor


def datasets(rows_d2: int = 100_000) -> dict[str, tuple]:
    return {
        "D1": lambda: make_regression(n_samples=1_000, n_features=20, noise=10, random_state=0),
        "D2": lambda: make_regression(
            n_samples=rows_d2, n_features=100, n_informative=20, noise=10, random_state=0
        ),
        "D3": lambda: make_regression(
            n_samples=500, n_features=5_000, n_informative=50, noise=10, random_state=0
        ),
        "D4": lambda: make_classification(n_samples=50_000, n_features=100, random_state=0),
    }


@dataclass
class Data:
    name: str
    X: pd.DataFrame
    y: pd.Series
    task: Task
    scoring: str
    folds: list = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return int(self.X.memory_usage(index=False).sum() + self.y.memory_usage(index=False))


def load(name: str, rows_d2: int = 100_000) -> Data:
    X, y = datasets(rows_d2)[name]()
    task = Task.classification if name == "D4" else Task.regression
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    del X
    data = Data(
        name,
        frame,
        pd.Series(y, name="y"),
        task,
        "roc_auc" if task == Task.classification else "neg_root_mean_squared_error",
    )
    kind = StratifiedKFold if task == Task.classification else KFold
    data.folds = list(kind(n_splits=5, shuffle=True, random_state=0).split(data.X, data.y))
    return data


# -- memory: peak resident set of this process, reset before each method (Linux) ----------


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_peak() -> int:
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def peak() -> int:
    return _status("VmHWM")


# -- the methods ------------------------------------------------------------------------


@dataclass
class Outcome:
    seconds: float
    score: float
    chosen: str
    timeline: list[tuple[float, float]]  # (seconds, best score so far), per trial
    extra: dict = field(default_factory=dict)


def cv_score(data: Data, estimator) -> float:
    """Our definition of a CV score: mean over the folds of the scorer, pipeline refitted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(estimator, data.X, data.y, cv=data.folds, scoring=data.scoring)
    return float(np.mean(scores))


def _candidate_estimator(data: Data, candidate: Candidate):
    return make_estimator(candidate, task=data.task, numeric=list(data.X.columns))


def ours(data: Data, *, log: bool) -> Outcome:
    setup = CVSetup.build(
        data.X,
        data.y,
        n_splits=5,
        random_state=0,
        scoring=data.scoring,
        numeric=list(data.X.columns),
        categorical=[],
        max_iter=SearchConfig().max_iter,
        tol=SearchConfig().tol,
        task=data.task,
    )
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(setup.folds, data.folds, strict=True)), (
        "the study's folds must be the benchmark's"
    )
    space = SearchSpace.from_config(SearchConfig())
    store = tempfile.mkdtemp(prefix="bench-")
    study = Study.open(
        storage=f"sqlite:///{store}/optuna.db",
        study_prefix=data.name,
        fingerprint="bench",
        seed=SearchConfig().random_state,
        space=space,
        guess_alpha=SearchConfig().guess_alpha,
        fresh=False,
    )
    timeline: list[tuple[float, float]] = []
    best = -np.inf
    pruned = []

    def record(result) -> None:
        nonlocal best
        if result.pruned:
            pruned.append(result.candidate)
        if result.ok:
            best = max(best, result.cv_score_mean)
        timeline.append((time.perf_counter() - start, best))

    extra = {}
    if log:
        # The store's schema and the parent run exist before the study starts, as in a job.
        tracker = tracking.Tracker(
            uri=f"sqlite:///{store}/mlflow.db",
            artifact_location=Path(store, "artifacts").as_uri(),
            experiment_name="bench",
        )
        parent = tracker.open_parent(None, run_name=data.name, tags={}, params={})
        start = time.perf_counter()
        with tracker.trial_logger(
            parent,
            example_X=data.X.head(5),
            example_y=data.y.head(5),
            log_models=True,
        ) as logger:

            def on_trial(result) -> None:
                record(result)
                logger.submit(result)

            study.optimize(setup, space, Budget(N_TRIALS, None, on_trial))
            extra["search_s"] = time.perf_counter() - start
        seconds = time.perf_counter() - start
        extra["child_runs"] = len(tracker.trial_runs(parent))
        extra["logging_s_per_trial"] = logger.seconds / max(logger.count, 1)
    else:
        start = time.perf_counter()
        study.optimize(setup, space, Budget(N_TRIALS, None, record))
        seconds = time.perf_counter() - start
    _, candidate, score = study.best()
    # Untimed: would any pruned trial have beaten the best, had it run all its folds?
    full = [float(np.mean(setup.fast.scores(c).cv)) for c in pruned]
    extra["pruned"] = len(pruned)
    extra["pruned_would_have_won"] = sum(s > score for s in full)
    return Outcome(seconds, score, candidate.label, timeline, extra)


def naive_optuna(data: Data) -> Outcome:
    """The loop users write first: in-memory study, cross_val_score per trial."""
    space = SearchSpace.from_config(SearchConfig())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=SearchConfig().random_state)
    )
    timeline: list[tuple[float, float]] = []

    def objective(trial) -> float:
        score = cv_score(data, _candidate_estimator(data, space.suggest(trial)))
        best = max([score, *(v for _, v in timeline[-1:])])
        timeline.append((time.perf_counter() - start, best))
        return score

    start = time.perf_counter()
    study.optimize(objective, n_trials=N_TRIALS)
    seconds = time.perf_counter() - start
    return Outcome(seconds, study.best_value, str(study.best_params), timeline)


def sklearn_tuner(make: Callable[[Data], Pipeline], chosen: Callable) -> Callable[[Data], Outcome]:
    """Time ``make(data).fit``; score what it chose with our CV definition (untimed)."""

    def run(data: Data) -> Outcome:
        model = make(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            model.fit(data.X, data.y)
            seconds = time.perf_counter() - start
        estimator, label = chosen(data, model)
        return Outcome(seconds, cv_score(data, estimator), label, [])

    return run


def _path_choice(data: Data, model: Pipeline):
    cv = model[-1]
    ratio = float(getattr(cv, "l1_ratio_", 1.0))
    if isinstance(cv, RidgeCV):
        candidate = Candidate(Penalty.l2, float(cv.alpha_))
    elif ratio == 1.0:
        candidate = Candidate(Penalty.l1, float(cv.alpha_))
    else:
        candidate = Candidate(Penalty.elasticnet, float(cv.alpha_), ratio)
    return _candidate_estimator(data, candidate), candidate.label


def _logistic_choice(data: Data, model: Pipeline):
    cv = model[-1]
    ratio = float(np.ravel(cv.l1_ratio_)[0])
    penalty = Penalty.l1 if ratio == 1.0 else Penalty.l2
    candidate = Candidate(penalty, 1.0 / float(np.ravel(cv.C_)[0]))
    return _candidate_estimator(data, candidate), candidate.label


def _grid_choice(data: Data, search: GridSearchCV):
    return clone(search.best_estimator_), str(search.best_params_)


def _scaled(model) -> Pipeline:
    return Pipeline([("prep", StandardScaler()), ("model", model)])


def grid_search(data: Data) -> Outcome:
    if data.task == Task.classification:
        grid = [
            {
                "model": [LogisticRegression(l1_ratio=r, solver=s, max_iter=10_000)],
                "model__C": list(1.0 / ALPHAS),
            }
            for r, s in ((1.0, "saga"), (0.0, "lbfgs"), (0.5, "saga"))
        ]
    else:
        grid = [
            {"model": [m], "model__alpha": list(ALPHAS)}
            for m in (Lasso(max_iter=10_000), Ridge(), ElasticNet(l1_ratio=0.5, max_iter=10_000))
        ]
    search = GridSearchCV(
        _scaled(Lasso()), grid, scoring=data.scoring, cv=data.folds, n_jobs=1, refit=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        search.fit(data.X, data.y)
        seconds = time.perf_counter() - start
    return Outcome(seconds, float(search.best_score_), str(search.best_params_), [])


def baselines(task: Task, slow: bool) -> dict[str, Callable[[Data], Outcome]]:
    if task == Task.classification:
        # GridSearchCV and the naive loop fit saga from a cold start at every C: at C >= 1
        # one fit took minutes here, so they run only with --slow.
        return {
            "LogisticRegressionCV-L1": sklearn_tuner(
                lambda d: _scaled(
                    LogisticRegressionCV(
                        cv=d.folds,
                        l1_ratios=(1.0,),
                        solver="saga",
                        scoring=d.scoring,
                        max_iter=10_000,
                        use_legacy_attributes=False,
                    )
                ),
                _logistic_choice,
            ),
            "LogisticRegressionCV-L2": sklearn_tuner(
                lambda d: _scaled(
                    LogisticRegressionCV(
                        cv=d.folds,
                        l1_ratios=(0.0,),
                        scoring=d.scoring,
                        max_iter=10_000,
                        use_legacy_attributes=False,
                    )
                ),
                _logistic_choice,
            ),
            **({"GridSearchCV": grid_search, "naive Optuna": naive_optuna} if slow else {}),
        }
    return {
        "LassoCV": sklearn_tuner(lambda d: _scaled(LassoCV(cv=d.folds)), _path_choice),
        "ElasticNetCV": sklearn_tuner(
            lambda d: _scaled(ElasticNetCV(l1_ratio=[0.1, 0.5, 0.9, 0.95, 1], cv=d.folds)),
            _path_choice,
        ),
        "RidgeCV-GCV": sklearn_tuner(lambda d: _scaled(RidgeCV(alphas=ALPHAS)), _path_choice),
        "RidgeCV-5fold": sklearn_tuner(
            lambda d: _scaled(RidgeCV(alphas=ALPHAS, cv=d.folds, scoring=d.scoring)),
            _path_choice,
        ),
        "GridSearchCV": grid_search,
        "naive Optuna": naive_optuna,
    }


# -- running and reporting ----------------------------------------------------------------


def measure(runs: dict[str, Callable[[], Outcome]], repeats: int) -> dict[str, dict]:
    """Time each of ``runs`` ``repeats`` times, in turn (a, b, a, b, ...): a drift in the
    machine's speed then touches them alike."""
    outcomes: dict[str, list[Outcome]] = {name: [] for name in runs}
    peaks: dict[str, list[int]] = {name: [] for name in runs}
    for i in range(repeats):
        for name, run in runs.items():
            before = reset_peak()
            outcomes[name].append(run())
            peaks[name].append(peak() - before)
        if i == 0 and all(o[0].seconds > SLOW_S for o in outcomes.values()):
            break
    return {name: summary(outcomes[name], peaks[name]) for name in runs}


def summary(outcomes: list[Outcome], peaks: list[int]) -> dict:
    times = [o.seconds for o in outcomes]
    best = max(outcomes, key=lambda o: o.score)
    median = statistics.median(times)
    middle = min(outcomes, key=lambda o: abs(o.seconds - median))
    return {
        "seconds": median,
        "runs": len(times),
        "noise": max(times) / min(times),
        "score": statistics.median(o.score for o in outcomes),
        "best_score": best.score,
        "chosen": middle.chosen,
        "timeline": middle.timeline,
        "peak_extra_bytes": max(peaks),
        "times": times,
        **{k: statistics.median(o.extra[k] for o in outcomes) for k in middle.extra},
    }


def time_to_target(result: dict, target: float) -> float | None:
    if result["timeline"]:
        return next((t for t, s in result["timeline"] if s >= target), None)
    return result["seconds"] if result["score"] >= target else None


def bench_dataset(name: str, repeats: int, only: str = "", slow: bool = False) -> dict:
    data = load(name)
    print(f"\n## {name}: {data.X.shape[0]} x {data.X.shape[1]}, {data.scoring}", flush=True)
    results = {}
    # Ours with logging on and off, in turn and more often: the overhead is their ratio.
    groups = [
        (
            {
                "ours (logging on)": lambda: ours(data, log=True),
                "ours (logging off)": lambda: ours(data, log=False),
            },
            max(repeats, OURS_REPEATS),
        )
    ]
    groups += [
        ({method: lambda run=run: run(data)}, repeats)
        for method, run in baselines(data.task, slow).items()
    ]
    for runs, n in groups:
        runs = {m: r for m, r in runs.items() if not only or any(o in m for o in only.split(","))}
        if not runs:
            continue
        for method, r in measure(runs, n).items():
            results[method] = r
            print(
                f"  {method}: {r['seconds']:.2f} s, score {r['score']:.6g} ({r['chosen']})",
                flush=True,
            )
    best = max(r["best_score"] for r in results.values())
    target = best - 0.005 * abs(best)
    for r in results.values():
        r["time_to_target_s"] = time_to_target(r, target)
    return {
        "shape": list(data.X.shape),
        "scoring": data.scoring,
        "data_bytes": data.nbytes,
        "best_score_any": best,
        "methods": results,
    }


def memory_check(rows: int) -> dict:
    """The search stage, logging on, on a tall version of D2: peak memory vs the data.

    The peak is taken from the moment the data is in memory (generating it has its own
    temporaries), and measured from the process's size before the data existed.
    """
    gc.collect()
    base = _status("VmRSS")
    data = load("D2", rows_d2=rows)
    with_data = reset_peak()
    outcome = ours(data, log=True)
    top = peak()
    result = {
        "rows": rows,
        "data_bytes": data.nbytes,
        "rss_before_data": base,
        "rss_with_data": with_data,
        "peak_rss": top,
        "peak_over_data": (top - base) / data.nbytes,
        "seconds": outcome.seconds,
        "score": outcome.score,
    }
    print(
        f"\n## memory: D2 with {rows} rows ({data.nbytes / 1e6:.0f} MB of data): peak "
        f"{(top - base) / 1e6:.0f} MB above the process before the data = "
        f"{result['peak_over_data']:.2f}x the data ({outcome.seconds:.1f} s)",
        flush=True,
    )
    return result


def table(name: str, res: dict) -> str:
    methods = res["methods"]
    ours_on = methods["ours (logging on)"]
    lines = [
        f"### {name} ({res['shape'][0]:,} x {res['shape'][1]:,}, {res['scoring']})",
        "",
        "| method | wall s (median) | runs | noise max/min | CV score | gap to best "
        "| time to 0.5% s | ours-on / method | peak MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    best = res["best_score_any"]
    for method, r in methods.items():
        ttt = r["time_to_target_s"]
        lines.append(
            f"| {method} | {r['seconds']:.2f} | {r['runs']} | {r['noise']:.2f} | {r['score']:.6g} "
            f"| {(best - r['score']) / abs(best):.3%} | {'never' if ttt is None else f'{ttt:.2f}'} "
            f"| {ours_on['seconds'] / r['seconds']:.3f} | {r['peak_extra_bytes'] / 1e6:.0f} |"
        )
    off = methods["ours (logging off)"]
    baseline = {m: r for m, r in methods.items() if not m.startswith("ours")}
    if baseline:
        top = max(r["score"] for r in baseline.values())
        gap = (top - ours_on["score"]) / abs(top)
        checks = [f"score gap to the best baseline {gap:+.3%} (floor: <= 0.1%)"]
        reference = (
            "LogisticRegressionCV-L1" if "LogisticRegressionCV-L1" in methods else ("ElasticNetCV")
        )
        for method, floor in ((reference, 0.5), ("GridSearchCV", 0.1)):
            if method in methods:
                ratio = ours_on["seconds"] / methods[method]["seconds"]
                checks.append(f"wall time / {method} {ratio:.3f} (floor: <= {floor})")
        lines += ["", "Floor: " + "; ".join(checks) + "."]
    paired = statistics.median(a / b for a, b in zip(ours_on["times"], off["times"], strict=True))
    lines += [
        "",
        f"Logging overhead: {ours_on['seconds'] / off['seconds'] - 1:+.1%} "
        f"(median of the {len(off['times'])} paired runs: {paired - 1:+.1%}; "
        f"{ours_on.get('child_runs', 0):.0f} child runs, "
        f"{ours_on.get('logging_s_per_trial', 0) * 1000:.0f} ms of logging per trial in the "
        f"logging workers). Pruned trials (logging off): {off.get('pruned', 0):.0f}; of those, "
        f"would have beaten the best on all folds: {off.get('pruned_would_have_won', 0):.0f}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="D1,D2,D3,D4")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-rows", type=int, default=1_000_000)
    parser.add_argument("--methods", default="", help="only methods containing one of these")
    parser.add_argument("--slow", action="store_true", help="GridSearchCV etc. on D4 too")
    parser.add_argument("--out", default="outputs/bench/search.json")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    report = {"n_trials": N_TRIALS, "repeats": args.repeats, "datasets": {}}
    for name in args.datasets.split(","):
        report["datasets"][name] = bench_dataset(name, args.repeats, args.methods, args.slow)
    if args.memory_rows:
        report["memory"] = memory_check(args.memory_rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=float))
    md = "\n\n".join(
        table(n, r) for n, r in report["datasets"].items() if "ours (logging on)" in r["methods"]
    )
    out.with_suffix(".md").write_text(md + "\n")
    print("\n" + md + f"\n\nwritten: {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
