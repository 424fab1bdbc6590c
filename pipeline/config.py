"""Typed configuration: dataclass schemas registered in Hydra's ConfigStore, validated once.

Every key a user can set lives here, with its default. Hydra composes ``conf/`` onto these
schemas, so an unknown key or a value of the wrong type fails before anything runs;
``validate`` then checks what types cannot (ranges, orderings) and resolves store paths.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pipeline.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Penalty(StrEnum):
    """Regularization penalty: L1 (Lasso), L2 (Ridge) or a mix of both (ElasticNet)."""

    l1 = "l1"
    l2 = "l2"
    elasticnet = "elasticnet"


class Task(StrEnum):
    """What the target is; ``auto`` infers it from the target's values."""

    auto = "auto"
    regression = "regression"
    classification = "classification"


class Missing(StrEnum):
    """What to do with missing feature values: refuse the data, or impute inside the model."""

    error = "error"
    impute = "impute"


@dataclass
class DataConfig:
    """Where the data comes from, and how its table is read; each source adds its own keys."""

    name: str = MISSING
    task: Task = Task.auto
    missing: Missing = Missing.error
    max_categories: int = 50
    drop: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)


@dataclass
class SeedRegressionData(DataConfig):
    """``sklearn.datasets.make_regression``; every knob is an argument of that function."""

    name: str = "seed_regression"
    n_samples: int = 100
    n_features: int = 20
    n_informative: int = 10
    bias: float = 0.0
    effective_rank: int | None = None
    tail_strength: float = 0.5
    noise: float = 0.1
    random_state: int = 42


@dataclass
class SeedClassificationData(DataConfig):
    """``sklearn.datasets.make_classification``; every knob is an argument of that function."""

    name: str = "seed_classification"
    n_samples: int = 200
    n_features: int = 20
    n_informative: int = 5
    n_redundant: int = 2
    n_repeated: int = 0
    n_classes: int = 2
    n_clusters_per_class: int = 2
    weights: list[float] | None = None
    flip_y: float = 0.01
    class_sep: float = 1.0
    random_state: int = 42


@dataclass
class BreastCancerData(DataConfig):
    """scikit-learn's bundled breast cancer data set (569 tumours, 30 features, 2 classes)."""

    name: str = "breast_cancer"


@dataclass
class WineData(DataConfig):
    """scikit-learn's bundled wine data set (178 wines, 13 features, 3 classes)."""

    name: str = "wine"


@dataclass
class DiabetesData(DataConfig):
    """scikit-learn's bundled diabetes data set (442 patients, 10 features)."""

    name: str = "diabetes"


@dataclass
class CsvData(DataConfig):
    """A CSV or Parquet file (chosen by suffix) with a target column."""

    name: str = "csv"
    path: str = MISSING
    target: str = MISSING
    features: list[str] | None = None


@dataclass
class SplitConfig:
    """Holdout split; arguments of ``sklearn.model_selection.train_test_split``."""

    test_size: float = 0.2
    random_state: int = 42
    shuffle: bool = True


@dataclass
class SearchConfig:
    """The Optuna search: space, cross-validation, budget and study storage."""

    penalties: list[Penalty] = field(
        default_factory=lambda: [Penalty.l1, Penalty.l2, Penalty.elasticnet]
    )
    alpha_low: float = 1e-4
    alpha_high: float = 100.0
    l1_ratio_low: float = 0.05
    l1_ratio_high: float = 0.95
    guess_alpha: float = 0.1
    n_splits: int = 5
    scoring: str | None = None
    random_state: int = 42
    n_trials: int = 50
    timeout: float | None = None
    max_iter: int = 10_000
    tol: float = 1e-4
    storage: str | None = None
    fresh: bool = False
    prune: bool = True
    progress_bar: bool = True
    # A running trial records a heartbeat every heartbeat_interval seconds; one silent for
    # grace_period seconds belongs to a dead process and is failed (and retried once).
    heartbeat_interval: int = 10
    grace_period: int = 30


@dataclass
class TrackingConfig:
    """The MLflow tracking store and what each trial logs."""

    uri: str | None = None
    artifact_location: str | None = None
    experiment_name: str = "regularization"
    log_trial_models: bool = True


class Job(StrEnum):
    """What ``python -m pipeline`` does."""

    tune = "tune"  # run or resume a study, register its best model, gate it
    worker = "worker"  # join the study on a shared storage and run trials; no report
    retrain = "retrain"  # the same, unattended: locked, skipped when nothing changed
    rollback = "rollback"  # move the champion alias back to the previous champion
    predict = "predict"  # score a table with the champion


@dataclass
class RegistryConfig:
    """The model registry: the challenger of each study against the current champion.

    ``metric`` is the holdout metric the gate compares (null: rmse for regression,
    roc_auc for two classes, log_loss for more); a challenger is promoted when it beats
    the champion by at least ``min_improvement`` and beats the baselines.
    """

    enabled: bool = True
    model_name: str | None = None
    metric: str | None = None
    min_improvement: float = 0.0
    force: bool = False
    reject_exit_code: int = 0
    reason: str = ""


@dataclass
class PredictConfig:
    """``job=predict``: score ``input`` (CSV or Parquet) with the model at ``alias``."""

    input: str | None = None
    output: str | None = None
    alias: str = "champion"


@dataclass
class Config:
    """The whole job. ``store_dir`` holds the embedded stores unless a URI overrides them."""

    data: DataConfig = MISSING
    split: SplitConfig = field(default_factory=SplitConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    job: Job = Job.tune
    store_dir: str = "mlruns"


def register_configs() -> None:
    """Register the schemas so ``conf/`` files are checked against them."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(group="data", name="seed_regression_schema", node=SeedRegressionData)
    cs.store(group="data", name="diabetes_schema", node=DiabetesData)
    cs.store(group="data", name="seed_classification_schema", node=SeedClassificationData)
    cs.store(group="data", name="breast_cancer_schema", node=BreastCancerData)
    cs.store(group="data", name="wine_schema", node=WineData)
    cs.store(group="data", name="csv_schema", node=CsvData)


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    if "@" not in url or "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a database URL: mask the user-info part by hand
        scheme, rest = url.split("://", 1)
        userinfo, host = rest.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"


def unreachable(key: str, url: str, exc: BaseException) -> UserError:
    """One line for a store that cannot be used: the URL masked, the password scrubbed."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return UserError(f"{key}: cannot use {mask_url(url)}: {text}")


def check_known_keys(given: dict, cfg: Config) -> None:
    """Refuse keys the schemas do not know, even when added with Hydra's ``+key=value``."""

    def walk(values: dict, known: dict, prefix: str) -> None:
        for key, value in values.items():
            name = f"{prefix}{key}"
            if key not in known:
                raise UserError(f"config: unknown key {name!r} (no such setting)")
            if isinstance(value, dict) and isinstance(known[key], dict):
                walk(value, known[key], f"{name}.")

    walk(given, dataclasses.asdict(cfg), "")


def _require(ok: bool, key: str, condition: str, value: object) -> None:
    if not ok:
        raise UserError(f"The '{key}' parameter must be {condition}. Got {value!r} instead.")


def _absolute_sqlite(url: str) -> str:
    """Make the path of a ``sqlite:///relative.db`` URL absolute against the project root."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        path = url[len(prefix) :]
        if path and path != ":memory:":
            return prefix + str((PROJECT_ROOT / path).resolve())
    return url


def validate(cfg: Config) -> Config:
    """Check value ranges and return a copy with every store location made absolute."""
    s = cfg.search
    _require(len(s.penalties) > 0, "search.penalties", "a non-empty list", s.penalties)
    _require(
        len(set(s.penalties)) == len(s.penalties),
        "search.penalties",
        "a list without repeats",
        [p.value for p in s.penalties],
    )
    _require(s.alpha_low > 0, "search.alpha_low", "> 0", s.alpha_low)
    _require(
        s.alpha_high > s.alpha_low, "search.alpha_high", f"> alpha_low={s.alpha_low}", s.alpha_high
    )
    _require(s.guess_alpha > 0, "search.guess_alpha", "> 0", s.guess_alpha)
    _require(0 <= s.l1_ratio_low <= 1, "search.l1_ratio_low", "in [0, 1]", s.l1_ratio_low)
    _require(
        s.l1_ratio_low <= s.l1_ratio_high <= 1,
        "search.l1_ratio_high",
        f"in [l1_ratio_low={s.l1_ratio_low}, 1]",
        s.l1_ratio_high,
    )
    _require(s.n_splits >= 2, "search.n_splits", ">= 2", s.n_splits)
    _require(s.n_trials >= 1, "search.n_trials", ">= 1", s.n_trials)
    _require(s.timeout is None or s.timeout > 0, "search.timeout", "> 0 or null", s.timeout)
    _require(s.max_iter >= 1, "search.max_iter", ">= 1", s.max_iter)
    _require(s.tol > 0, "search.tol", "> 0", s.tol)
    _require(s.heartbeat_interval >= 1, "search.heartbeat_interval", ">= 1", s.heartbeat_interval)
    _require(
        s.grace_period > s.heartbeat_interval,
        "search.grace_period",
        f"> heartbeat_interval={s.heartbeat_interval}",
        s.grace_period,
    )
    if s.scoring is not None:
        _check_scoring(s.scoring)
    if cfg.registry.metric is not None:
        _require(
            cfg.registry.metric in METRIC_DIRECTION,
            "registry.metric",
            f"one of {', '.join(METRIC_DIRECTION)}",
            cfg.registry.metric,
        )
    _require(
        cfg.registry.min_improvement >= 0,
        "registry.min_improvement",
        ">= 0",
        cfg.registry.min_improvement,
    )
    if cfg.job == Job.predict:
        _require(bool(cfg.predict.input), "predict.input", "a file path", cfg.predict.input)
        _require(bool(cfg.predict.output), "predict.output", "a file path", cfg.predict.output)
    _require(cfg.data.max_categories >= 2, "data.max_categories", ">= 2", cfg.data.max_categories)
    _require(
        0 < cfg.split.test_size < 1,
        "split.test_size",
        "in the open interval (0, 1)",
        cfg.split.test_size,
    )
    if isinstance(cfg.data, SeedRegressionData):
        d = cfg.data
        _require(d.n_samples >= 2, "data.n_samples", ">= 2", d.n_samples)
        _require(d.n_features >= 1, "data.n_features", ">= 1", d.n_features)
        _require(
            0 <= d.n_informative <= d.n_features,
            "data.n_informative",
            f"in [0, n_features={d.n_features}]",
            d.n_informative,
        )
        _require(d.noise >= 0, "data.noise", ">= 0", d.noise)
    if isinstance(cfg.data, SeedClassificationData):
        d = cfg.data
        _require(d.n_samples >= 2, "data.n_samples", ">= 2", d.n_samples)
        _require(d.n_classes >= 2, "data.n_classes", ">= 2", d.n_classes)
        _require(
            d.n_informative + d.n_redundant + d.n_repeated <= d.n_features,
            "data.n_features",
            ">= n_informative + n_redundant + n_repeated",
            d.n_features,
        )
        _require(
            d.n_classes * d.n_clusters_per_class <= 2**d.n_informative,
            "data.n_informative",
            "large enough that n_classes * n_clusters_per_class <= 2**n_informative",
            d.n_informative,
        )

    store = Path(cfg.store_dir).expanduser()
    store = store if store.is_absolute() else (PROJECT_ROOT / store)
    store = store.resolve()
    tracking_uri = _absolute_sqlite(cfg.tracking.uri or f"sqlite:///{store / 'mlflow.db'}")
    artifacts = cfg.tracking.artifact_location or (store / "artifacts").as_uri()
    if "://" not in artifacts:
        artifacts = (PROJECT_ROOT / Path(artifacts).expanduser()).resolve().as_uri()
    storage = _absolute_sqlite(cfg.search.storage or f"sqlite:///{store / 'optuna.db'}")
    storage, tracking_uri = _psycopg(storage), _psycopg(tracking_uri)
    try:
        make_url(storage)
    except ArgumentError:
        _require(
            False,
            "search.storage",
            "a database URL such as postgresql+psycopg://user@host/db",
            mask_url(storage),
        )
    if tracking_uri.startswith(("http://", "https://")) and not cfg.tracking.artifact_location:
        artifacts = None  # the tracking server's own default (proxied artifacts)
    if cfg.job == Job.worker:
        _check_worker(cfg, storage, tracking_uri)
    return dataclasses.replace(
        cfg,
        store_dir=str(store),
        search=dataclasses.replace(cfg.search, storage=storage),
        tracking=dataclasses.replace(cfg.tracking, uri=tracking_uri, artifact_location=artifacts),
    )


def _psycopg(url: str) -> str:
    """``postgresql://`` with the installed driver (psycopg 3), as SQLAlchemy needs it spelt."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _check_worker(cfg: Config, storage: str, tracking_uri: str) -> None:
    """A worker shares its study and its runs with other machines: no file-based stores."""
    _require(
        not storage.startswith("sqlite"),
        "search.storage",
        "a PostgreSQL URL for job=worker (SQLite is one process's store; see Scale-out in the "
        "README, e.g. search=distributed)",
        mask_url(storage),
    )
    _require(
        not tracking_uri.startswith(("sqlite", "file:")) and "://" in tracking_uri,
        "tracking.uri",
        "an http(s):// tracking server or a PostgreSQL URL for job=worker (e.g. tracking=server)",
        mask_url(tracking_uri),
    )
    _require(
        not cfg.search.fresh,
        "search.fresh",
        "false for job=worker (a worker joins the newest study; start a fresh one with make tune)",
        cfg.search.fresh,
    )


def model_name(cfg: Config, dataset_name: str | None = None) -> str:
    """``registry.model_name``, or by default the data set's name (a CSV file's stem)."""
    if cfg.registry.model_name:
        return cfg.registry.model_name
    if dataset_name:
        return dataset_name
    if isinstance(cfg.data, CsvData):
        return Path(cfg.data.path).stem
    return cfg.data.name


def check_for_task(cfg: Config, task: Task) -> None:
    """Settings that only make sense for one task: ``registry.metric``."""
    allowed = METRICS_BY_TASK[task]
    metric = cfg.registry.metric
    if metric is not None and metric not in allowed:
        raise UserError(
            f"The 'registry.metric' parameter must be one of {', '.join(allowed)} for a "
            f"{task.value} target. Got {metric!r} instead."
        )


METRICS_BY_TASK = {
    Task.regression: ("r2", "rmse", "mae"),
    Task.classification: ("accuracy", "f1", "roc_auc", "log_loss"),
}
# Holdout metrics the registry gate can compare, and whether higher is better.
METRIC_DIRECTION = {
    "r2": True,
    "rmse": False,
    "mae": False,
    "accuracy": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
}


def default_gate_metric(task: Task, n_classes: int) -> str:
    """The holdout metric the registry gate uses when ``registry.metric`` is null."""
    if task == Task.regression:
        return "rmse"
    return "roc_auc" if n_classes == 2 else "log_loss"


def default_scoring(task: Task, n_classes: int) -> str:
    """The scorer used when ``search.scoring`` is null."""
    if task == Task.regression:
        return "neg_root_mean_squared_error"
    return "roc_auc" if n_classes == 2 else "neg_log_loss"


def _check_scoring(name: str) -> None:
    from sklearn.metrics import get_scorer_names

    if name not in get_scorer_names():
        raise UserError(
            f"The 'search.scoring' parameter must be a scikit-learn scorer name such as "
            f"'neg_root_mean_squared_error' or 'r2'. Got {name!r} instead."
        )
