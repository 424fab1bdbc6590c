"""Typed configuration: dataclass schemas registered in Hydra's ConfigStore.

Every key a user can set lives here, with its default. Hydra composes ``conf/`` onto these
schemas, so an unknown key or a value of the wrong type fails before anything runs;
``constraints.validate`` then checks what types cannot (ranges, orderings) and
``stores`` resolves store paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from pipeline.data_config import BreastCancerData as BreastCancerData
from pipeline.data_config import CsvData as CsvData
from pipeline.data_config import DataConfig as DataConfig
from pipeline.data_config import DiabetesData as DiabetesData
from pipeline.data_config import Missing as Missing
from pipeline.data_config import SeedClassificationData as SeedClassificationData
from pipeline.data_config import SeedRegressionData as SeedRegressionData
from pipeline.data_config import Task as Task
from pipeline.data_config import WineData as WineData

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Penalty(StrEnum):
    """Regularization penalty: L1 (Lasso), L2 (Ridge) or a mix of both (ElasticNet)."""

    l1 = "l1"
    l2 = "l2"
    elasticnet = "elasticnet"


class Select(StrEnum):
    """Which finished trial a study refits: the best mean CV score, or the simplest model
    whose mean CV score is within one standard error of the best's (glmnet's lambda.1se)."""

    best = "best"
    one_se = "one_se"


class SplitStrategy(StrEnum):
    """How rows are split: independently; keeping each group (``data.group_column``) on one
    side of the holdout and of every fold; or in time order (``data.time_column``)."""

    random = "random"
    group = "group"
    time = "time"


@dataclass
class SplitConfig:
    """Holdout split: ``train_test_split``'s arguments, or with ``strategy=group``
    ``GroupShuffleSplit``'s (``test_size`` is then a share of the groups); with
    ``strategy=time`` the latest ``test_size`` of the rows, and forward-chaining folds with
    ``gap`` rows left out between training and validation rows (``TimeSeriesSplit``)."""

    test_size: float = 0.2
    random_state: int = 42
    shuffle: bool = True
    strategy: SplitStrategy = SplitStrategy.random
    gap: int = 0


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
    select: Select = Select.best
    stability_bootstrap: int = 0
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
    connect_timeout: float = 10.0  # seconds the stores have to answer at start


class Job(StrEnum):
    """What ``python -m pipeline`` does."""

    tune = "tune"  # run or resume a study, register its best model, gate it
    worker = "worker"  # join the study on a shared storage and run trials; no report
    retrain = "retrain"  # the same, unattended: locked, skipped when nothing changed
    rollback = "rollback"  # move the champion alias back to the previous champion
    predict = "predict"  # score a table with the champion
    verify = "verify"  # check the champion's files are those registered (make serve)


@dataclass
class RegistryConfig:
    """The model registry: the challenger of each study against the current champion.

    ``metric`` is the holdout metric the gate compares (null: rmse for regression,
    log_loss for classification); a challenger is promoted when it beats
    the champion by at least ``min_improvement`` and beats the baselines. The version
    registered is refitted on all rows, holdout included, unless ``refit_all_rows=false``.
    """

    enabled: bool = True
    refit_all_rows: bool = True
    model_name: str | None = None
    metric: str | None = None
    min_improvement: float = 0.0
    force: bool = False
    # job=retrain: train on columns other than the champion's (gone, new, retyped); the
    # change is recorded on the version (tag schema_change). False: stop, exit 65.
    allow_schema_change: bool = False
    reject_exit_code: int = 0
    reason: str = ""


@dataclass
class HoldoutConfig:
    """How sure the holdout metrics are: ``n_bootstrap`` resamples of the holdout rows
    (seeded by ``seed``) give each metric a ``confidence`` interval, and the registry gate
    its paired comparisons at the same confidence."""

    n_bootstrap: int = 1000
    confidence: float = 0.95
    seed: int = 0


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
    holdout: HoldoutConfig = field(default_factory=HoldoutConfig)
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


def to_yaml(values: dict) -> str:
    """Plain config values as YAML, the way Hydra writes a job's config."""
    return OmegaConf.to_yaml(OmegaConf.create(values))


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


def model_name(cfg: Config, dataset_name: str | None = None) -> str:
    """``registry.model_name``, or by default the data set's name (a CSV file's stem)."""
    if cfg.registry.model_name:
        return cfg.registry.model_name
    if dataset_name:
        return dataset_name
    if isinstance(cfg.data, CsvData):
        return Path(cfg.data.path).stem
    return cfg.data.name


def default_gate_metric(task: Task, n_classes: int) -> str:
    """The holdout metric the registry gate uses when ``registry.metric`` is null."""
    return "rmse" if task == Task.regression else "log_loss"


def default_scoring(task: Task, n_classes: int) -> str:
    """The scorer used when ``search.scoring`` is null."""
    # Log loss, a proper scoring rule, for any number of classes: ROC AUC cannot see
    # calibration, and the strength it picks can leave probabilities far from the truth.
    return "neg_root_mean_squared_error" if task == Task.regression else "neg_log_loss"
