"""Shared fixtures: configs composed from the real ``conf/`` and small data sets."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pipeline.config import PROJECT_ROOT, Config, register_configs

register_configs()


@pytest.fixture
def make_config() -> Callable[..., Config]:
    """Compose ``conf/config.yaml`` with overrides, as the command line would."""

    def _make(*overrides: str) -> Config:
        with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base=None):
            cfg = compose("config", overrides=list(overrides))
        return OmegaConf.to_object(cfg)

    return _make


@pytest.fixture(scope="session")
def make_setup():
    """CV folds on generated regression data, as the search stage builds them."""
    from pipeline.config import SeedRegressionData
    from pipeline.data import load
    from pipeline.search import CVSetup

    def _make(*, n_splits: int, max_iter: int, **data) -> CVSetup:
        ds = load(SeedRegressionData(**data))
        return CVSetup.build(
            ds.X,
            ds.y,
            n_splits=n_splits,
            random_state=0,
            scoring="neg_root_mean_squared_error",
            numeric=list(ds.X.columns),
            categorical=[],
            max_iter=max_iter,
            tol=1e-4,
        )

    return _make


@pytest.fixture
def table() -> pd.DataFrame:
    """60 rows: two informative numeric columns, a noise column, a 3-level category, a target."""
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame(
        {
            "size": rng.normal(100, 20, n),
            "rooms": rng.integers(1, 6, n).astype(float),
            "noise": rng.normal(0, 1, n),
            "city": rng.choice(["north", "south", "east"], n),
        }
    )
    frame["price"] = (
        3 * frame["size"]
        + 10 * frame["rooms"]
        + frame["city"].map({"north": 50, "south": 0, "east": -20})
        + rng.normal(0, 5, n)
    )
    return frame


@pytest.fixture(scope="session")
def postgres():
    """A reachable PostgreSQL (started if none answers) with a throwaway role; see pg_helpers."""
    import pg_helpers

    pg = pg_helpers.start()
    yield pg
    pg.drop_databases()
    pg.stop()


@pytest.fixture
def pg_stores(postgres) -> dict[str, str]:
    """Two empty databases: the Optuna storage and the MLflow tracking store."""
    return {
        "optuna": postgres.create_database("regtune_optuna"),
        "mlflow": postgres.create_database("regtune_mlflow"),
    }
