"""Load or generate the data set: a feature table ``X`` and a target ``y``."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import CsvData, DataConfig, DiabetesData, SeedRegressionData
from pipeline.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dataset:
    """Features, target and where they came from."""

    X: pd.DataFrame
    y: pd.Series
    name: str
    source: str

    @property
    def digest(self) -> str:
        """A short content hash of features, target and column names."""
        return digest(self.X, self.y)


def digest(X: pd.DataFrame, y: pd.Series) -> str:
    """Content hash of a table and its target, stable across processes."""
    h = hashlib.sha256()
    h.update(repr([(str(c), str(t)) for c, t in X.dtypes.items()]).encode())
    h.update(str(y.name).encode())
    h.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    h.update(pd.util.hash_pandas_object(y, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def load(cfg: DataConfig) -> Dataset:
    """Build the data set named by ``cfg``."""
    if isinstance(cfg, SeedRegressionData):
        return _seed_regression(cfg)
    if isinstance(cfg, DiabetesData):
        return _diabetes(cfg)
    if isinstance(cfg, CsvData):
        return _table(cfg)
    raise TypeError(f"no loader for {type(cfg).__name__}")


def _seed_regression(cfg: SeedRegressionData) -> Dataset:
    from sklearn.datasets import make_regression

    X, y = make_regression(
        n_samples=cfg.n_samples,
        n_features=cfg.n_features,
        n_informative=cfg.n_informative,
        bias=cfg.bias,
        effective_rank=cfg.effective_rank,
        tail_strength=cfg.tail_strength,
        noise=cfg.noise,
        random_state=cfg.random_state,
    )
    width = len(str(cfg.n_features - 1))
    columns = [f"x{i:0{width}d}" for i in range(cfg.n_features)]
    source = (
        f"make_regression(n_samples={cfg.n_samples}, n_features={cfg.n_features}, "
        f"n_informative={cfg.n_informative}, noise={cfg.noise}, random_state={cfg.random_state})"
    )
    return Dataset(pd.DataFrame(X, columns=columns), pd.Series(y, name="y"), cfg.name, source)


def _diabetes(cfg: DiabetesData) -> Dataset:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(as_frame=True)
    return Dataset(bunch.data, bunch.target.rename("target"), cfg.name, "sklearn.load_diabetes")


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file by suffix; unreadable files become a ``UserError``."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise UserError(f"data.path: no such file: {path}")
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"data.path: cannot read {path}: {first}") from exc
    raise UserError(f"data.path: unsupported file type {suffix!r} for {path}; use .csv or .parquet")


def _table(cfg: CsvData) -> Dataset:
    path = Path(cfg.path).expanduser().resolve()
    frame = read_table(path)
    columns = [str(c) for c in frame.columns]
    if cfg.target not in columns:
        raise UserError(
            f"data.target: column {cfg.target!r} not found in {path} "
            f"(columns: {', '.join(columns[:20])}{', ...' if len(columns) > 20 else ''})"
        )
    if cfg.features is None:
        features = [c for c in frame.columns if c != cfg.target]
    else:
        missing = [c for c in cfg.features if c not in columns]
        if missing:
            raise UserError(f"data.features: column {missing[0]!r} not found in {path}")
        if cfg.target in cfg.features:
            raise UserError(f"data.features: the target column {cfg.target!r} is listed")
        features = list(cfg.features)
    X = frame.loc[:, features]
    y = frame[cfg.target]
    if isinstance(y, pd.DataFrame):  # the target name appears twice
        raise UserError(f"data.target: column {cfg.target!r} appears more than once in {path}")
    return Dataset(X, y, cfg.name if cfg.name != "csv" else path.stem, str(path))


def feature_kinds(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Split column names into numeric and categorical (strings, categories, booleans)."""
    categorical = list(X.select_dtypes(include=["object", "str", "category", "bool"]).columns)
    numeric = [c for c in X.columns if c not in categorical]
    return numeric, categorical


def as_float(y: pd.Series) -> np.ndarray:
    """The target as a float array."""
    return y.to_numpy(dtype=float)
