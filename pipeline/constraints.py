"""Declarative constraints on the typed config, checked once before anything runs.

``validate`` checks what types cannot (ranges, orderings, names) and returns a copy with
every store location made absolute; ``check_for_task`` adds what depends on the data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pipeline import stores
from pipeline.config import (
    METRIC_DIRECTION,
    METRICS_BY_TASK,
    PROJECT_ROOT,
    Config,
    CsvData,
    DataConfig,
    HoldoutConfig,
    Job,
    RegistryConfig,
    SearchConfig,
    SeedClassificationData,
    SeedRegressionData,
    SplitConfig,
    SplitStrategy,
    Task,
    TrackingConfig,
)
from pipeline.errors import UserError, require


def check_known_keys(given: dict, cfg: Config) -> None:
    """Refuse keys the schemas do not know, even when added with Hydra's ``+key=value``."""

    def walk(values: dict, known: dict, prefix: str) -> None:
        for key, value in values.items():
            name = f"{prefix}{key}"
            if key not in known:
                raise UserError(f"config: unknown key {name!r} (no such setting)")
            if isinstance(value, dict) and isinstance(known[key], dict):
                walk(value, known[key], f"{name}.")

    walk(given, dataclasses.asdict(cfg), "")


def _is_scorer(name: str | None) -> bool:
    from sklearn.metrics import get_scorer_names

    return name is None or name in get_scorer_names()


Rule = tuple[type, str, str, Callable[[Any], bool]]
# Declarative constraints, checked in order: (schema, key, condition, test of the section).
# A rule applies when the section the key names is an instance of its schema; the
# condition is formatted with that section as ``s``.
RULES: tuple[Rule, ...] = (
    (SearchConfig, "search.penalties", "a non-empty list", lambda s: len(s.penalties) > 0),
    (
        SearchConfig,
        "search.penalties",
        "a list without repeats",
        lambda s: len(set(s.penalties)) == len(s.penalties),
    ),
    (SearchConfig, "search.alpha_low", "> 0", lambda s: s.alpha_low > 0),
    (
        SearchConfig,
        "search.alpha_high",
        "> alpha_low={s.alpha_low}",
        lambda s: s.alpha_high > s.alpha_low,
    ),
    (SearchConfig, "search.guess_alpha", "> 0", lambda s: s.guess_alpha > 0),
    (SearchConfig, "search.l1_ratio_low", "in [0, 1]", lambda s: 0 <= s.l1_ratio_low <= 1),
    (
        SearchConfig,
        "search.l1_ratio_high",
        "in [l1_ratio_low={s.l1_ratio_low}, 1]",
        lambda s: s.l1_ratio_low <= s.l1_ratio_high <= 1,
    ),
    (SearchConfig, "search.n_splits", ">= 2", lambda s: s.n_splits >= 2),
    (SearchConfig, "search.n_trials", ">= 1", lambda s: s.n_trials >= 1),
    (SearchConfig, "search.timeout", "> 0 or null", lambda s: s.timeout is None or s.timeout > 0),
    (SearchConfig, "search.max_iter", ">= 1", lambda s: s.max_iter >= 1),
    (SearchConfig, "search.tol", "> 0", lambda s: s.tol > 0),
    (SearchConfig, "search.heartbeat_interval", ">= 1", lambda s: s.heartbeat_interval >= 1),
    (
        SearchConfig,
        "search.grace_period",
        "> heartbeat_interval={s.heartbeat_interval}",
        lambda s: s.grace_period > s.heartbeat_interval,
    ),
    (
        SearchConfig,
        "search.scoring",
        "a scikit-learn scorer name such as 'neg_root_mean_squared_error' or 'r2'",
        lambda s: _is_scorer(s.scoring),
    ),
    (
        RegistryConfig,
        "registry.metric",
        f"one of {', '.join(METRIC_DIRECTION)}",
        lambda s: s.metric is None or s.metric in METRIC_DIRECTION,
    ),
    (RegistryConfig, "registry.min_improvement", ">= 0", lambda s: s.min_improvement >= 0),
    (HoldoutConfig, "holdout.n_bootstrap", ">= 1", lambda s: s.n_bootstrap >= 1),
    (TrackingConfig, "tracking.connect_timeout", "> 0", lambda s: s.connect_timeout > 0),
    (
        SearchConfig,
        "search.stability_bootstrap",
        ">= 0",
        lambda s: s.stability_bootstrap >= 0,
    ),
    (HoldoutConfig, "holdout.confidence", "in (0, 1)", lambda s: 0 < s.confidence < 1),
    (DataConfig, "data.max_categories", ">= 2", lambda s: s.max_categories >= 2),
    (SplitConfig, "split.test_size", "in the open interval (0, 1)", lambda s: 0 < s.test_size < 1),
    (SeedRegressionData, "data.n_samples", ">= 2", lambda s: s.n_samples >= 2),
    (SeedRegressionData, "data.n_features", ">= 1", lambda s: s.n_features >= 1),
    (
        SeedRegressionData,
        "data.n_informative",
        "in [0, n_features={s.n_features}]",
        lambda s: 0 <= s.n_informative <= s.n_features,
    ),
    (SeedRegressionData, "data.noise", ">= 0", lambda s: s.noise >= 0),
    (SeedClassificationData, "data.n_samples", ">= 2", lambda s: s.n_samples >= 2),
    (SeedClassificationData, "data.n_classes", ">= 2", lambda s: s.n_classes >= 2),
    (
        SeedClassificationData,
        "data.n_features",
        ">= n_informative + n_redundant + n_repeated",
        lambda s: s.n_informative + s.n_redundant + s.n_repeated <= s.n_features,
    ),
    (
        SeedClassificationData,
        "data.n_informative",
        "large enough that n_classes * n_clusters_per_class <= 2**n_informative",
        lambda s: s.n_classes * s.n_clusters_per_class <= 2**s.n_informative,
    ),
)


def _shown(value: object) -> object:
    """A value as the user wrote it: a list of enum members by their values."""
    if isinstance(value, list):
        return [v.value if isinstance(v, StrEnum) else v for v in value]
    return value


def _check_rules(cfg: Config) -> None:
    for schema, key, condition, test in RULES:
        section_name, name = key.split(".")
        section = getattr(cfg, section_name)
        if isinstance(section, schema):
            value = _shown(getattr(section, name))
            require(test(section), key, condition.format(s=section), value)


def _check_data_columns(data: DataConfig) -> None:
    """A column declared categorical is neither declared numeric, dropped, nor the target."""
    for other, listed in (("data.numeric", data.numeric), ("data.drop", data.drop)):
        both = [c for c in data.categorical if c in listed]
        if both:
            raise UserError(
                f"data.categorical: column {both[0]!r} is also listed in {other}; "
                "list it in one of them"
            )
    if isinstance(data, CsvData) and data.target in data.categorical:
        raise UserError(
            f"data.categorical: column {data.target!r} is the target (data.target); "
            "set data.task=classification to take its values as classes"
        )


def _check_strategy(cfg: Config) -> None:
    """``split.strategy=group`` goes with ``data.group_column``, ``time`` with
    ``data.time_column``; groups are drawn at random, so the rows must be shuffled."""
    data, strategy = cfg.data, cfg.split.strategy
    for needs, key, what in (
        (SplitStrategy.group, "group_column", "the column of groups"),
        (SplitStrategy.time, "time_column", "the column of times"),
    ):
        column = getattr(data, key)
        if strategy == needs and not column:
            raise UserError(f"split.strategy={needs.value} needs data.{key}: {what}")
        if column and strategy != needs:
            raise UserError(
                f"data.{key}={column!r} is set but split.strategy is {strategy.value}; "
                f"set split.strategy={needs.value} to split by it"
            )
        if column in (*data.categorical, *data.numeric):
            raise UserError(
                f"data.{key}: column {column!r} is also declared a feature (data.categorical "
                "or data.numeric); it is never one"
            )
    if strategy == SplitStrategy.group:
        require(cfg.split.shuffle, "split.shuffle", "true with split.strategy=group", False)
    require(cfg.split.gap >= 0, "split.gap", ">= 0", cfg.split.gap)
    if cfg.split.gap and strategy != SplitStrategy.time:
        raise UserError("split.gap: only split.strategy=time leaves a gap between folds")


def validate(cfg: Config) -> Config:
    """Check value ranges and return a copy with every store location made absolute."""
    _check_rules(cfg)
    _check_data_columns(cfg.data)
    _check_strategy(cfg)
    if cfg.job == Job.predict:
        require(bool(cfg.predict.input), "predict.input", "a file path", cfg.predict.input)
        require(bool(cfg.predict.output), "predict.output", "a file path", cfg.predict.output)
    found = stores.resolve(
        store_dir=cfg.store_dir,
        tracking_uri=cfg.tracking.uri,
        artifact_location=cfg.tracking.artifact_location,
        storage=cfg.search.storage,
        root=PROJECT_ROOT,
    )
    if cfg.job == Job.worker:
        stores.check_shared(found)
        require(
            not cfg.search.fresh,
            "search.fresh",
            "false for job=worker (a worker joins the newest study; start a fresh one with "
            "make tune)",
            cfg.search.fresh,
        )
    return dataclasses.replace(
        cfg,
        # In time order the holdout is the latest rows: never shuffled.
        split=dataclasses.replace(
            cfg.split, shuffle=cfg.split.shuffle and cfg.split.strategy != SplitStrategy.time
        ),
        store_dir=found.store_dir,
        search=dataclasses.replace(cfg.search, storage=found.storage),
        tracking=dataclasses.replace(
            cfg.tracking, uri=found.tracking_uri, artifact_location=found.artifact_location
        ),
    )


def check_for_task(cfg: Config, task: Task) -> None:
    """Settings that only make sense for one task: ``registry.metric``."""
    allowed = METRICS_BY_TASK[task]
    require(
        cfg.registry.metric is None or cfg.registry.metric in allowed,
        "registry.metric",
        f"one of {', '.join(allowed)} for a {task.value} target",
        cfg.registry.metric,
    )
