"""Load or generate the data set: a feature table ``X`` and a target ``y``."""

from __future__ import annotations

import csv
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import rowkeys
from pipeline.config import (
    BreastCancerData,
    CsvData,
    DataConfig,
    DiabetesData,
    SeedClassificationData,
    SeedRegressionData,
    Task,
    WineData,
)
from pipeline.errors import UserError

log = logging.getLogger(__name__)


MAX_CLASS_VALUES = 10  # an integer target with at most this many values is a class label
MIN_ID_ROWS = 20  # fewer distinct whole numbers than this are not taken for an id
_ID_NAME = re.compile(r"(?:^|[\W_])(?:id|key|idx|index|uuid)$", re.IGNORECASE)
_ID_CAMEL = re.compile(r"[a-z](?:Id|ID)$")  # userId, customerID


@dataclass(frozen=True)
class Dataset:
    """Features, target, the task they pose and where they came from."""

    X: pd.DataFrame
    y: pd.Series
    name: str
    source: str
    task: Task = Task.regression
    n_rows_dropped: int = 0
    # The source's row of each row of X (None: the same), to name it in messages.
    positions: np.ndarray | None = field(default=None, repr=False, compare=False)
    groups: pd.Series | None = field(default=None, repr=False, compare=False)  # group_column
    times: pd.Series | None = field(default=None, repr=False, compare=False)  # time_column

    @cached_property
    def classes(self) -> list:
        """The sorted class labels (classification only)."""
        return sorted(self.y.unique().tolist()) if self.task == Task.classification else []

    @cached_property
    def digest(self) -> str:
        """A short content hash of features, target, groups and column names (hashed once)."""
        keys = {"group": self.groups, "time": self.times}
        extra = {f"{k}:{v.name}": v for k, v in keys.items() if v is not None}
        return digest(self.X.assign(**extra), self.y)

    def row_label(self, i: int) -> str:
        """Where row ``i`` of ``X`` is in the source: ``line N`` of a CSV file (its header is
        line 1, so the first data row is line 2), else ``row N`` counted from 0 as in pandas."""
        position = int(i if self.positions is None else self.positions[i])
        if not self.source.lower().endswith(".csv"):
            return f"row {position}"
        lines = self.record_lines
        if len(lines) != len(self.X) + self.n_rows_dropped:  # not the file pandas read
            return f"line {position + 2}"
        return f"line {lines[position]}"

    @cached_property
    def record_lines(self) -> list[int]:
        """The line each data row of a CSV source starts on (read when a message needs it)."""
        return csv_record_lines(Path(self.source))


def digest(X: pd.DataFrame, y: pd.Series) -> str:
    """Content hash of a table and its target, stable across processes."""
    h = hashlib.sha256()
    h.update(repr([(str(c), str(t)) for c, t in X.dtypes.items()]).encode())
    h.update(str(y.name).encode())
    h.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    h.update(pd.util.hash_pandas_object(y, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def load(cfg: DataConfig) -> Dataset:
    """Build the data set named by ``cfg``, with its task inferred or as configured."""
    if isinstance(cfg, SeedRegressionData | SeedClassificationData):
        ds = _generated(cfg)
    elif isinstance(cfg, DiabetesData | BreastCancerData | WineData):
        ds = _bundled(cfg)
    elif isinstance(cfg, CsvData):
        ds = _table(cfg)
    else:
        raise TypeError(f"no loader for {type(cfg).__name__}")
    ds = replace(ds, task=infer_task(ds.y, cfg.task))
    ds = rowkeys.split_off(ds, group_column=cfg.group_column, time_column=cfg.time_column)
    for column in cfg.categorical:
        if column == ds.y.name:
            raise UserError(f"data.categorical: column {column!r} is the target (data.target)")
        if column not in ds.X.columns:
            raise UserError(
                f"data.categorical: column {column!r} is not a feature column of {ds.source}"
            )
    return replace(ds, X=as_categories(ds.X, cfg.categorical)) if cfg.categorical else ds


def as_categories(X: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``X`` with the number-valued ``columns`` as text, so that they are one-hot encoded:
    3, 3.0 and "3" all read "3"; missing values stay missing. Booleans, text and pandas
    categories are categories already and are left as they are, as is text in an object
    column. A model trained on such a column wants the same text at prediction time: pass
    the raw rows of its categorical columns through this first."""
    convert = [
        c
        for c in columns
        if pd.api.types.is_object_dtype(X[c])
        or (pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c]))
    ]
    if not convert:
        return X
    return X.assign(**{c: X[c].map(_as_text, na_action="ignore") for c in convert})


def _as_text(value) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)  # text as it is: "03" stays "03"


def infer_task(y: pd.Series, task: Task = Task.auto) -> Task:
    """Classification for a target of strings, booleans, categories or few integer values."""
    if task != Task.auto:
        return task
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return Task.classification
    values = y.dropna()
    integral = pd.api.types.is_integer_dtype(y) or bool(
        np.all(np.mod(values.to_numpy(dtype=float), 1) == 0)
    )
    if integral and values.nunique() <= MAX_CLASS_VALUES:
        return Task.classification
    return Task.regression


def _generated(cfg: SeedRegressionData | SeedClassificationData) -> Dataset:
    """Call the scikit-learn generator whose arguments are the config's own keys."""
    from sklearn import datasets

    generator = datasets.make_regression
    if isinstance(cfg, SeedClassificationData):
        generator = datasets.make_classification
    base = {f.name for f in fields(DataConfig)}
    knobs = {k: v for k, v in asdict(cfg).items() if k not in base}
    X, y = generator(**knobs)
    width = len(str(cfg.n_features - 1))
    columns = [f"x{i:0{width}d}" for i in range(cfg.n_features)]
    source = f"{generator.__name__}({', '.join(f'{k}={v!r}' for k, v in knobs.items())})"
    return Dataset(pd.DataFrame(X, columns=columns), pd.Series(y, name="y"), cfg.name, source)


_BUNDLED = {
    DiabetesData: "load_diabetes",
    BreastCancerData: "load_breast_cancer",
    WineData: "load_wine",
}


def _bundled(cfg: DiabetesData | BreastCancerData | WineData) -> Dataset:
    from sklearn import datasets

    loader = _BUNDLED[type(cfg)]
    bunch = getattr(datasets, loader)(as_frame=True)
    y = bunch.target.rename("target")
    if not isinstance(cfg, DiabetesData):  # class names, so predictions read as labels
        y = pd.Series(np.asarray(bunch.target_names)[bunch.target], name="target")
    return Dataset(bunch.data, y, cfg.name, f"sklearn.datasets.{loader}")


def read_table(path: Path, *, key: str = "data.path") -> pd.DataFrame:
    """Read a CSV or Parquet file by suffix; unreadable files become a ``UserError``."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise UserError(f"{key}: no such file: {path}")
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{key}: cannot read {path}: {first}") from exc
    raise UserError(f"{key}: unsupported file type {suffix!r} for {path}; use .csv or .parquet")


def _csv_header(path: Path) -> list[str]:
    """The header as written; pandas would rename a repeated name ``a`` to ``a.1``."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _table(cfg: CsvData) -> Dataset:
    path = Path(cfg.path).expanduser().resolve()
    frame = read_table(path)
    header = _csv_header(path) if path.suffix.lower() == ".csv" else list(frame.columns)
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise UserError(f"data: column {repeated[0]!r} appears more than once in {path}")
    if frame.empty and len(frame.columns) == 0:
        raise UserError(f"data.path: {path} has no columns")
    columns = [str(c) for c in frame.columns]
    for key, listed in (
        ("data.drop", cfg.drop),
        ("data.numeric", cfg.numeric),
        ("data.categorical", cfg.categorical),
    ):
        unknown = [c for c in listed if c not in columns]
        if unknown:
            raise UserError(f"{key}: column {unknown[0]!r} not found in {path}")
    if cfg.target not in columns:
        raise UserError(
            f"data.target: column {cfg.target!r} not found in {path} "
            f"(columns: {', '.join(columns[:20])}{', ...' if len(columns) > 20 else ''})"
        )
    if cfg.features is None:
        features = [c for c in frame.columns if c != cfg.target and c not in cfg.drop]
    else:
        missing = [c for c in cfg.features if c not in columns]
        if missing:
            raise UserError(f"data.features: column {missing[0]!r} not found in {path}")
        if cfg.target in cfg.features:
            raise UserError(f"data.features: the target column {cfg.target!r} is listed")
        features = [c for c in cfg.features if c not in cfg.drop]
    keys = (cfg.group_column, cfg.time_column)  # split off by load(), named if not found
    features += [c for c in keys if c in columns and c not in features]
    y = frame[cfg.target]
    keep = y.notna()
    dropped = int((~keep).sum())
    if dropped:
        log.warning("dropped %d row(s) of %s whose target %r is missing", dropped, path, cfg.target)
    X = frame.loc[keep, features].reset_index(drop=True)
    y = y[keep].reset_index(drop=True)
    positions = np.flatnonzero(keep.to_numpy()) if dropped else None
    return Dataset(X, y, path.stem, str(path), n_rows_dropped=dropped, positions=positions)


def csv_record_lines(path: Path) -> list[int]:
    """The line on which each data row of a CSV file starts, as pandas reads the file (blank
    lines skipped, a quoted value may span lines); empty if the file cannot be read."""
    starts: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            end = 0
            for record in reader:
                if record:
                    starts.append(end + 1)
                end = reader.line_num
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return starts[1:]  # the first record is the header


def feature_kinds(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Split column names into numeric and categorical (strings, categories, booleans)."""
    categorical = list(X.select_dtypes(include=["object", "str", "category", "bool"]).columns)
    numeric = [c for c in X.columns if c not in categorical]
    return numeric, categorical


def numeric_ids(X: pd.DataFrame, *, declared: Sequence[str] = ()) -> list[str]:
    """Numeric columns (but those ``declared`` numeric) that are most likely ids: different
    whole numbers in at least ``MIN_ID_ROWS`` rows that run nearly without gaps (so many
    different values of a measurement in so narrow a range would repeat) or whose name
    reads like an id. Measurements are often all different too, but rarely whole numbers."""
    found = []
    for column in feature_kinds(X)[0]:
        values = X[column].dropna()
        if column in declared or len(values) < MIN_ID_ROWS or values.nunique() < len(values):
            continue
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        numbers = values.to_numpy(dtype=float)
        if not (np.isfinite(numbers).all() and (numbers == np.round(numbers)).all()):
            continue
        dense = numbers.max() - numbers.min() < 2 * len(numbers)
        if dense or _ID_NAME.search(str(column)) or _ID_CAMEL.search(str(column)):
            found.append(column)
    return found
