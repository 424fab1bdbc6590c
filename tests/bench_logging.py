"""What MLflow logging costs a study: the default job's search with logging off and on.

Run with ``make bench``. Each variant runs three times in this one process, on fresh
temporary stores; medians are reported, and ratios to "off" measured in the same run.
"""

from __future__ import annotations

import statistics
import tempfile
import time

from pipeline import data, tracking
from pipeline.config import SearchConfig, SeedRegressionData
from pipeline.search import CVSetup, SearchSpace, Study
from pipeline.split import holdout

N_TRIALS = 50
REPEATS = 3


def main() -> None:
    ds = data.load(SeedRegressionData())
    parts = holdout(ds, test_size=0.2, random_state=42, shuffle=True)
    setup = CVSetup.build(
        parts.X_train,
        parts.y_train,
        n_splits=5,
        random_state=42,
        scoring="neg_root_mean_squared_error",
        numeric=list(ds.X.columns),
        categorical=[],
        max_iter=10_000,
        tol=1e-4,
    )
    space = SearchSpace.from_config(SearchConfig())

    def once(log: bool, models: bool = True) -> tuple[float, float, float]:
        d = tempfile.mkdtemp()
        study = Study.open(
            storage=f"sqlite:///{d}/optuna.db",
            study_prefix="bench",
            fingerprint="f",
            seed=42,
            space=space,
            guess_alpha=0.1,
            fresh=False,
        )
        kwargs = dict(n_trials=N_TRIALS, timeout=None, show_progress_bar=False)
        if not log:
            start = time.perf_counter()
            study.optimize(setup, space, on_trial=lambda r: None, **kwargs)
            elapsed = time.perf_counter() - start
            return elapsed, elapsed, 0.0
        tracker = tracking.Tracker(
            uri=f"sqlite:///{d}/mlflow.db", artifact_location=f"file://{d}/a", experiment_name="b"
        )
        parent = tracker.open_parent(None, run_name="bench", tags={}, params={})
        logger = tracker.trial_logger(
            parent,
            example_X=parts.X_train.head(5),
            example_y=parts.y_train.head(5),
            log_models=models,
        )
        start = time.perf_counter()
        with logger:
            study.optimize(setup, space, on_trial=logger.submit, **kwargs)
            searched = time.perf_counter() - start
        return time.perf_counter() - start, searched, logger.seconds / logger.count

    variants = {"off": (False, False), "on": (True, True), "on, no trial models": (True, False)}
    results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in variants}
    for _ in range(REPEATS):
        for name, (log, models) in variants.items():
            results[name].append(once(log, models))
    base = statistics.median(r[0] for r in results["off"])
    print(f"default job, {N_TRIALS} trials, median of {REPEATS}")
    print("| logging | study s | search s | logging ms/trial | study / off |")
    print("|---|---|---|---|---|")
    for name, rows in results.items():
        total, search, per = (statistics.median(r[i] for r in rows) for i in range(3))
        print(f"| {name} | {total:.2f} | {search:.2f} | {per * 1000:.0f} | {total / base:.2f}x |")
    spread = max(r[0] for r in results["off"]) / min(r[0] for r in results["off"])
    print(f"noise: slowest/fastest 'off' run = {spread:.2f}")


if __name__ == "__main__":
    main()
