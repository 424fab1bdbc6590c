"""``job=predict``: score a table with a registered model and write the predictions."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import config
from pipeline.config import Config
from pipeline.data import read_table
from pipeline.errors import UserError

log = logging.getLogger(__name__)


def run(cfg: Config) -> dict[str, Any]:
    """Predict ``cfg.predict.input`` with ``models:/<registry.model_name>@<alias>``."""
    cfg = config.validate(cfg)
    source = Path(cfg.predict.input).expanduser().resolve()
    target = Path(cfg.predict.output).expanduser().resolve()
    if target.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise UserError(f"predict.output: use a .csv or .parquet file name, not {target.name!r}")
    frame = read_table(source)

    from pipeline import tracking

    tracker = tracking.Tracker(
        uri=cfg.tracking.uri,
        artifact_location=cfg.tracking.artifact_location,
        experiment_name=cfg.tracking.experiment_name,
    )
    name, alias = cfg.registry.model_name, cfg.predict.alias
    version = tracker.alias(name, alias)
    if version is None:
        raise UserError(
            f"registry.model_name: no model {name!r} with alias {alias!r} in "
            f"{config.mask_url(cfg.tracking.uri)}"
        )
    model = tracker.load_model(f"models:/{name}@{alias}")
    needed = [str(c) for c in model.feature_names_in_]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise UserError(
            f"predict.input: column {missing[0]!r} that model {name} v{version.version} "
            f"needs is not in {source}"
        )
    X = frame[needed]
    out = frame.copy()
    out["prediction"] = model.predict(X)
    if hasattr(model[-1], "predict_proba") and hasattr(model[-1], "classes_"):
        proba = model.predict_proba(X)
        for i, label in enumerate(model.classes_):
            out[f"proba_{label}"] = np.round(proba[:, i], 6)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    if target.suffix.lower() == ".csv":
        out.to_csv(partial, index=False)
    else:
        out.to_parquet(partial, index=False)
    os.replace(partial, target)  # never a half-written output
    log.info("wrote %d predictions of %s v%s to %s", len(out), name, version.version, target)
    return {"model": name, "version": version.version, "rows": len(out), "output": str(target)}
