"""Which finished trial a study refits: the best mean CV score, or the one-SE rule.

``best``: the complete trial with the highest mean CV score (Optuna's best trial).

``one_se`` (glmnet's ``lambda.1se``, Hastie, Tibshirani & Friedman, ESL 7.10): among the
complete trials whose mean CV score is within one standard error of the best trial's
(SE = the sample standard deviation of the best trial's fold scores / sqrt(number of
folds)), the simplest: the fewest non-zero coefficients in its refit on all training rows,
then the best trial's penalty type, then the strongest penalty (the largest alpha; alphas
of different penalty types are on different scales), then the better CV score. It trades a
little CV score, within the noise of the folds, for a sparser and more stable model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from pipeline.config import Penalty, Select
from pipeline.models import Candidate


@dataclass(frozen=True)
class Pick:
    """One trial picked by a selection rule."""

    trial: int
    candidate: Candidate
    cv_score: float
    cv_se: float
    n_nonzero: int


def picks(trials: pd.DataFrame) -> dict[Select, Pick]:
    """Both rules' picks from ``Study.trials_frame()`` (complete trials)."""
    best = trials.loc[trials["cv_score"].idxmax()]
    close = trials[trials["cv_score"] >= best["cv_score"] - best["cv_se"]]
    # Alphas compare only within a penalty type (Ridge's scale is not Lasso's).
    close = close.assign(other_penalty=close["penalty"] != best["penalty"])
    simplest = close.sort_values(
        ["n_nonzero", "other_penalty", "alpha", "cv_score"],
        ascending=[True, True, False, False],
        na_position="last",
    ).iloc[0]
    return {Select.best: _pick(best), Select.one_se: _pick(simplest)}


def _pick(row: pd.Series) -> Pick:
    ratio = row["l1_ratio"]
    l1_ratio = None if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)) else ratio
    candidate = Candidate(Penalty(row["penalty"]), float(row["alpha"]), l1_ratio)
    n_nonzero = row["n_nonzero"]
    return Pick(
        trial=int(row["number"]),
        candidate=candidate,
        cv_score=float(row["cv_score"]),
        cv_se=float(row["cv_se"]),
        n_nonzero=-1 if pd.isna(n_nonzero) else int(n_nonzero),
    )
