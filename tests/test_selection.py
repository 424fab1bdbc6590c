"""The selection rules: the best mean CV score, and the one-SE rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Penalty, Select
from pipeline.selection import picks


def _trials(seed: int, n: int = 40) -> pd.DataFrame:
    """Trials along an alpha path: sparser and (past a point) worse as alpha grows."""
    rng = np.random.default_rng(seed)
    alpha = np.sort(10 ** rng.uniform(-4, 2, n))
    nonzero = np.clip(20 - np.floor(3 * np.log10(alpha) + 12), 0, 20).astype(int)
    score = -1.0 - 0.05 * np.maximum(np.log10(alpha), 0) ** 2 + rng.normal(scale=0.01, size=n)
    return pd.DataFrame(
        {
            "number": rng.permutation(n),
            "penalty": rng.choice([p.value for p in Penalty], size=n),
            "alpha": alpha,
            "l1_ratio": np.nan,
            "cv_score": score,
            "cv_se": rng.uniform(0.005, 0.05, size=n),
            "n_nonzero": nonzero,
        }
    )


@pytest.mark.parametrize("seed", range(10))
def test_one_se_is_never_less_sparse_than_best_and_within_one_se(seed):
    trials = _trials(seed)
    chosen = picks(trials)
    best, simple = chosen[Select.best], chosen[Select.one_se]
    assert best.cv_score == trials["cv_score"].max()
    assert simple.n_nonzero <= best.n_nonzero
    assert simple.cv_score >= best.cv_score - best.cv_se
    # and it is the sparsest such trial
    close = trials[trials["cv_score"] >= best.cv_score - best.cv_se]
    assert simple.n_nonzero == close["n_nonzero"].min()


def test_ties_in_sparsity_go_to_the_strongest_penalty():
    trials = pd.DataFrame(
        {
            "number": [0, 1, 2],
            "penalty": ["l1", "l1", "l2"],
            "alpha": [0.01, 0.5, 0.2],
            "l1_ratio": [np.nan, np.nan, np.nan],
            "cv_score": [-1.0, -1.04, -1.02],
            "cv_se": [0.05, 0.05, 0.05],
            "n_nonzero": [10, 4, 4],
        }
    )
    chosen = picks(trials)
    assert chosen[Select.best].trial == 0
    assert chosen[Select.one_se].trial == 1
    assert chosen[Select.one_se].candidate.alpha == 0.5
    assert chosen[Select.one_se].candidate.l1_ratio is None
