"""The data sources' configuration schemas (``data=...``) and what they name: the task,
what to do with missing values. ``pipeline.config`` registers them with Hydra."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from omegaconf import MISSING


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
    categorical: list[str] = field(default_factory=list)
    # With split.strategy=group: the column naming each row's group (customer, patient,
    # store); never a feature. The holdout and every fold keep each group on one side.
    group_column: str | None = None
    # With split.strategy=time: the column of each row's time (dates, or numbers that sort
    # in time); rows are ordered by it and it is never a feature.
    time_column: str | None = None


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
