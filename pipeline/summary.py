"""What a job reports, typed: the result of each kind of job, and the JSON form a study's
summary takes on its parent run (``summary.json``), from which a finished study is reused."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class DataSummary:
    name: str
    source: str
    digest: str
    n_train: int
    n_test: int
    n_features: int


@dataclass(frozen=True)
class SpaceSummary:
    penalties: list[str]
    alpha_low: float
    alpha_high: float
    l1_ratio_low: float
    l1_ratio_high: float


@dataclass(frozen=True)
class BestTrial:
    """A trial a selection rule picked: its number, candidate, mean CV score with its
    standard error, and the non-zero coefficients of its refit (-1: not recorded)."""

    trial: int
    penalty: str
    alpha: float
    l1_ratio: float | None
    cv_score: float
    cv_se: float = float("nan")
    n_nonzero: int = -1


@dataclass(frozen=True)
class Decision:
    """What the registry's gate decided for a challenger version, and the numbers it used."""

    status: str  # promoted | kept | rejected
    reason: str
    metric: str
    version: str
    challenger_score: float
    champion_version: str | None = None
    champion_score: float | None = None


@dataclass(frozen=True, kw_only=True)
class Promotion(Decision):
    """A decision on the study's best model, registered as ``model``."""

    model: str

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Promotion:
        """The decision ``asdict`` wrote (fields added or dropped since are tolerated)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Promotion | None:
        """The decision recorded only as parent-run tags (before ``decision.json``)."""
        if "promotion" not in tags or "/" not in tags.get("registry.model", ""):
            return None
        model, _, version = tags["registry.model"].rpartition("/")
        reason = tags.get("promotion_reason", "")
        return cls(tags["promotion"], reason, "", version, float("nan"), model=model)


@dataclass(frozen=True)
class StudySummary:
    """A finished study: where it is recorded, what it chose, and how that scored."""

    study: str
    fingerprint: str
    parent_run_id: str
    experiment_name: str
    experiment_id: str
    tracking_uri: str
    ui_url: str
    ui_command: str
    task: str
    classes: list[str]
    scoring: str
    n_splits: int
    space: SpaceSummary
    data: DataSummary
    trials: dict[str, int]  # complete, pruned, failed
    holdout: dict[str, dict[str, float]]  # "best" and each baseline: metric -> value
    metrics: dict[str, float]  # as logged on the parent run
    best: BestTrial  # the trial refitted and registered: picks[selected]
    best_model_uri: str
    # The holdout metrics' intervals ([low, high]; empty in summaries of older versions)
    # at ``confidence``, from a bootstrap over the holdout rows.
    holdout_intervals: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    confidence: float = 0.95
    selected: str = "best"  # the rule that chose it (search.select)
    picks: dict[str, BestTrial] = field(default_factory=dict)  # each rule's pick
    # Features whose coefficient is non-zero in every CV fold's model, and in none.
    always_selected: list[str] = field(default_factory=list)
    never_selected: list[str] = field(default_factory=list)
    # What the registry takes: best_model refitted on all rows (n_fitted), or best_model.
    registered_model_uri: str = ""
    n_fitted: int = 0
    reused: bool = False  # an earlier run's study, finished before this job started
    promotion: Promotion | None = None
    standing: str = ""  # reported again: where the decided version stands in the registry now

    @property
    def registered_uri(self) -> str:
        """The model the registry takes (``best_model_uri`` for older summaries)."""
        return self.registered_model_uri or self.best_model_uri

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StudySummary:
        """The summary :meth:`to_dict` wrote; ``KeyError``/``TypeError`` if it is not one."""
        parts = {
            "space": SpaceSummary,
            "data": DataSummary,
            "best": BestTrial,
            "promotion": Promotion,
        }
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        for key, kind in parts.items():
            if values.get(key) is not None:
                values[key] = kind(**values[key])
        values["picks"] = {k: BestTrial(**v) for k, v in values.get("picks", {}).items()}
        return cls(**values)


@dataclass(frozen=True)
class WorkerSummary:
    """``job=worker``: the trials it ran in a shared study; the study itself is reported by
    the job that finishes it."""

    study: str
    parent_run_id: str
    n_trials: int
    trials_here: int
    trials: dict[str, int]
    finished: bool


@dataclass(frozen=True)
class Skipped:
    """A retraining job with nothing to do, and why."""

    reason: str


@dataclass(frozen=True)
class Predictions:
    """``job=predict``: how many rows were predicted, by which model version, and where to."""

    model: str
    version: str
    rows: int
    output: str


JobResult = StudySummary | WorkerSummary | Skipped
