from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import MissingMandatoryValue

from pipeline.config import (
    PROJECT_ROOT,
    BreastCancerData,
    CsvData,
    DiabetesData,
    Penalty,
    SeedClassificationData,
    SeedRegressionData,
    Task,
    WineData,
    default_gate_metric,
    default_scoring,
    to_yaml,
)
from pipeline.constraints import validate
from pipeline.errors import UserError
from pipeline.stores import mask_url


def test_default_config_is_the_tutorial_setup(make_config):
    cfg = make_config()
    assert isinstance(cfg.data, SeedRegressionData)
    assert (cfg.data.n_samples, cfg.data.n_features, cfg.data.noise) == (100, 20, 0.1)
    assert cfg.data.random_state == 42
    assert (cfg.split.test_size, cfg.split.random_state) == (0.2, 42)
    assert cfg.search.penalties == [Penalty.l1, Penalty.l2, Penalty.elasticnet]
    assert cfg.search.guess_alpha == 0.1
    assert cfg.search.scoring is None  # chosen by task: see test_default_scoring_by_task


@pytest.mark.parametrize(
    ("task", "n_classes", "scoring"),
    [
        (Task.regression, 0, "neg_root_mean_squared_error"),
        (Task.classification, 2, "neg_log_loss"),
        (Task.classification, 3, "neg_log_loss"),
    ],
)
def test_default_scoring_by_task(task, n_classes, scoring):
    assert default_scoring(task, n_classes) == scoring
    # The gate judges the holdout by the same proper scoring rule the search tuned for.
    gate = {"neg_root_mean_squared_error": "rmse", "neg_log_loss": "log_loss"}[scoring]
    assert default_gate_metric(task, n_classes) == gate


@pytest.mark.parametrize(
    ("option", "kind"),
    [
        ("seed_classification", SeedClassificationData),
        ("breast_cancer", BreastCancerData),
        ("wine", WineData),
    ],
)
def test_classification_data_sources(make_config, option, kind):
    assert isinstance(make_config(f"data={option}").data, kind)


def test_overrides_reach_the_typed_config(make_config):
    cfg = make_config("search.n_trials=200", "data=diabetes", "search.penalties=[l1]")
    assert cfg.search.n_trials == 200
    assert isinstance(cfg.data, DiabetesData)
    assert cfg.search.penalties == [Penalty.l1]


def test_csv_source_takes_path_target_and_features(make_config):
    cfg = make_config("data=csv", "data.path=x.csv", "data.target=y", "data.features=[a,b]")
    assert isinstance(cfg.data, CsvData)
    assert (cfg.data.path, cfg.data.target, cfg.data.features) == ("x.csv", "y", ["a", "b"])


@pytest.mark.parametrize(
    "override",
    [
        "search.n_trial=5",
        "search.n_trials=many",
        "search.penalties=[l3]",
        "data.path=x.csv",
        "data.task=ordinal",
        "data.missing=drop",
    ],
)
def test_unknown_keys_and_wrong_types_fail_at_composition(make_config, override):
    with pytest.raises(ConfigCompositionException):
        make_config(override)


def test_csv_without_path_is_a_missing_value(make_config):
    with pytest.raises(MissingMandatoryValue, match="path"):
        make_config("data=csv")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("search.alpha_low=0", r"'search.alpha_low' parameter must be > 0\. Got 0\.0"),
        ("search.alpha_low=-1", r"'search.alpha_low' parameter must be > 0\. Got -1\.0"),
        ("search.alpha_high=1e-5", r"'search.alpha_high' parameter must be > alpha_low"),
        ("search.n_splits=1", r"'search.n_splits' parameter must be >= 2\. Got 1"),
        ("holdout.confidence=1.5", r"'holdout.confidence' parameter must be in \(0, 1\)"),
        ("holdout.n_bootstrap=0", r"'holdout.n_bootstrap' parameter must be >= 1\. Got 0"),
        ("split.test_size=1.0", r"'split.test_size' parameter must be in the open interval"),
        ("split.test_size=0", r"'split.test_size' parameter must be in the open interval"),
        ("search.n_trials=0", r"'search.n_trials' parameter must be >= 1"),
        ("search.penalties=[]", r"'search.penalties' parameter must be a non-empty list"),
        ("search.penalties=[l1,l1]", r"'search.penalties' parameter must be a list without"),
        ("search.l1_ratio_high=1.5", r"'search.l1_ratio_high' parameter must be in"),
        ("search.scoring=accurcy", r"'search.scoring' parameter must be a scikit-learn scorer"),
        ("data.n_informative=30", r"'data.n_informative' parameter must be in \[0, n_features"),
        ("data.max_categories=1", r"'data.max_categories' parameter must be >= 2"),
    ],
)
def test_out_of_range_values_are_user_errors(make_config, override, message):
    with pytest.raises(UserError, match=message):
        validate(make_config(override))


def test_store_paths_are_absolute_whatever_the_working_directory(
    make_config, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)
    cfg = validate(make_config())
    store = PROJECT_ROOT / "mlruns"
    assert cfg.store_dir == str(store)
    assert cfg.tracking.uri == f"sqlite:///{store / 'mlflow.db'}"
    assert cfg.tracking.artifact_location == (store / "artifacts").as_uri()
    assert cfg.search.storage == f"sqlite:///{store / 'optuna.db'}"


def test_relative_sqlite_urls_and_store_dir_resolve_against_the_project(make_config, tmp_path):
    cfg = validate(make_config("search.storage=sqlite:///elsewhere/o.db", f"store_dir={tmp_path}"))
    assert cfg.search.storage == f"sqlite:///{PROJECT_ROOT / 'elsewhere' / 'o.db'}"
    assert cfg.tracking.uri == f"sqlite:///{Path(tmp_path) / 'mlflow.db'}"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:secret@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("http://u:secret@mlflow:5000", "http://u:***@mlflow:5000"),
        ("sqlite:////tmp/a.db", "sqlite:////tmp/a.db"),
    ],
)
def test_mask_url_hides_passwords(url, masked):
    assert mask_url(url) == masked


def test_to_yaml_writes_plain_values_as_hydra_does():
    assert to_yaml({"search": {"n_trials": 5, "timeout": None}}) == (
        "search:\n  n_trials: 5\n  timeout: null\n"
    )
