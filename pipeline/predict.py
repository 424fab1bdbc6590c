"""``job=predict``: score a table with a registered model and write the predictions."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from pipeline import config, constraints, interrupt, stores
from pipeline.config import Config
from pipeline.data import as_categories, read_table
from pipeline.errors import UserError
from pipeline.summary import Predictions


def _check_values(model, X, source: Path) -> None:
    """Name the column and row of a value the model cannot take (text, missing, infinite)."""
    import pandas as pd

    prep = model[0]
    imputes = "SimpleImputer" in repr(prep)
    for column in _numeric_inputs(prep):
        values = pd.to_numeric(X[column], errors="coerce")
        bad = values.isna() & X[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise UserError(
                f"predict.input: column {column!r} of {source} holds {X[column].iloc[row]!r} "
                f"(row {row}), not a number"
            )
        if not imputes and values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise UserError(
                f"predict.input: column {column!r} of {source} has a missing value (row {row}); "
                "this model was trained without data.missing=impute"
            )
        if np.isinf(values.to_numpy(dtype=float)).any():
            raise UserError(f"predict.input: column {column!r} of {source} has infinite values")


def _numeric_inputs(prep) -> list[str]:
    """The columns the preprocessor standardizes (all of them without a ColumnTransformer)."""
    if hasattr(prep, "transformers_"):
        return [c for name, _, cols in prep.transformers_ if name == "num" for c in cols]
    return [str(c) for c in prep.feature_names_in_]


def _categorical_inputs(prep) -> list[str]:
    """The columns the preprocessor one-hot encodes (none without a ColumnTransformer)."""
    if hasattr(prep, "transformers_"):
        return [c for name, _, cols in prep.transformers_ if name == "cat" for c in cols]
    return []


def run(cfg: Config) -> Predictions:
    """Predict ``cfg.predict.input`` with ``models:/<registry.model_name>@<alias>``."""
    cfg = constraints.validate(cfg)
    source = Path(cfg.predict.input).expanduser().resolve()
    target = Path(cfg.predict.output).expanduser().resolve()
    if target.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise UserError(f"predict.output: use a .csv or .parquet file name, not {target.name!r}")
    frame = read_table(source, key="predict.input")

    from pipeline.model_store import Registry

    tracker = Registry.open(cfg.tracking.uri, timeout=cfg.tracking.connect_timeout)
    name, alias = config.model_name(cfg), cfg.predict.alias
    version = _version(tracker, name, alias, uri=cfg.tracking.uri)
    model = tracker.load_version(name, version.version)
    needed = [str(c) for c in model.feature_names_in_]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        listed = ", ".join(repr(c) for c in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise UserError(
            f"predict.input: {source} lacks {len(missing)} column(s) that model {name} "
            f"v{version.version} needs: {listed}"
        )
    # Columns trained as categories (data.categorical) may be read as numbers here.
    X = as_categories(frame[needed], _categorical_inputs(model[0]))
    _check_values(model, X, source)
    out = frame.copy()
    out["prediction"] = model.predict(X)
    if hasattr(model[-1], "predict_proba") and hasattr(model[-1], "classes_"):
        proba = model.predict_proba(X)
        for i, label in enumerate(model.classes_):
            out[f"proba_{label}"] = np.round(proba[:, i], 6)
    _write(out, target)
    return Predictions(model=name, version=version.version, rows=len(out), output=str(target))


def _version(tracker, name: str, alias: str, *, uri: str):
    """The model version at ``alias``; a user error naming the challenger when there is none."""
    version = tracker.alias(name, alias)
    if version is not None:
        return version
    hint = ""
    challenger = tracker.alias(name, "challenger") if alias != "challenger" else None
    if challenger is not None:
        hint = (
            f"; version {challenger.version} is the challenger "
            f"({challenger.tags.get('promotion', 'not promoted')}): predict.alias=challenger"
        )
    raise UserError(
        f"registry.model_name: no model {name!r} with alias {alias!r} in "
        f"{stores.mask_url(uri)}{hint}"
    )


def _write(out, target: Path) -> None:
    """Write the table next to ``target`` and move it into place: never a half-written file."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix.lower() == ".csv":
            out.to_csv(partial, index=False)
        else:
            out.to_parquet(partial, index=False)
        interrupt.check()
        os.replace(partial, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise UserError(f"predict.output: cannot write {target}: {exc.strerror or exc}") from None
