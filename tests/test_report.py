from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.report import description, summary_text
from pipeline.summary import Skipped, StudySummary

VALUES = {
    "study": "seed_regression-abc-1",
    "fingerprint": "abc",
    "experiment_id": "1",
    "tracking_uri": "sqlite:///mlruns/mlflow.db",
    "task": "regression",
    "classes": [],
    "metrics": {"best_cv_score": -0.11},
    "best_model_uri": "models:/m-1",
    "parent_run_id": "r1",
    "experiment_name": "regularization",
    "ui_url": "http://127.0.0.1:5000/#/experiments/1/runs/r1",
    "ui_command": "make ui",
    "scoring": "neg_root_mean_squared_error",
    "n_splits": 5,
    "space": {
        "penalties": ["l1", "l2"],
        "alpha_low": 1e-4,
        "alpha_high": 100.0,
        "l1_ratio_low": 0.05,
        "l1_ratio_high": 0.95,
    },
    "data": {
        "name": "seed_regression",
        "source": "make_regression(...)",
        "digest": "d1",
        "n_train": 80,
        "n_test": 20,
        "n_features": 20,
    },
    "trials": {"complete": 48, "failed": 2},
    "best": {
        "trial": 7,
        "penalty": "l1",
        "alpha": 0.00123,
        "l1_ratio": None,
        "cv_score": -0.11,
        "cv_se": 0.01,
        "n_nonzero": 12,
    },
    "holdout": {
        "best": {"r2": 0.99999, "rmse": 0.1218, "mae": 0.1},
        "lasso_guess": {"r2": 0.9999, "rmse": 0.3463, "mae": 0.2934},
    },
    "holdout_intervals": {
        "best": {"r2": [0.99997, 1.0], "rmse": [0.1003, 0.1481], "mae": [0.08, 0.12]},
        "lasso_guess": {"r2": [0.9998, 0.99995], "rmse": [0.30, 0.39], "mae": [0.25, 0.33]},
    },
    "confidence": 0.95,
    "always_selected": ["x1", "x4"],
    "never_selected": [f"x{i}" for i in range(10, 20)],
}
SUMMARY = StudySummary.from_dict(VALUES)


def test_summary_text_has_the_result_the_baselines_and_the_way_to_the_ui():
    text = summary_text(SUMMARY)
    assert "l1  alpha=0.00123  (trial 7)" in text
    assert "48 complete, 0 pruned, 2 failed" in text
    assert "lasso_guess" in text and "0.3463" in text
    assert "95% interval" in text and "0.1003 to 0.1481" in text
    assert "in all 5 folds' models: x1, x4" in text
    assert "in none: x10, x11, x12, x13, x14, x15, x16, x17 and 2 more" in text
    assert "make ui, then http://127.0.0.1:5000/#/experiments/1/runs/r1" in text
    assert "already finished" not in text
    assert "already finished" in summary_text(replace(SUMMARY, reused=True))


def test_description_is_a_markdown_table():
    md = description(SUMMARY)
    assert "| holdout (95% interval) | R2 | RMSE | MAE |" in md
    assert "| lasso_guess | 0.9999 (0.9998 to 0.99995) | 0.3463 (0.3 to 0.39) |" in md
    assert "penalties l1, l2" in md and "`d1`" in md


def test_a_summary_survives_its_json_form():
    assert StudySummary.from_dict(SUMMARY.to_dict()) == SUMMARY
    with pytest.raises(TypeError):  # an older form, missing fields: not reused
        StudySummary.from_dict({k: v for k, v in VALUES.items() if k != "best_model_uri"})


def test_a_summary_of_an_older_version_without_intervals_is_still_read_and_shown():
    older = {k: v for k, v in VALUES.items() if k not in ("holdout_intervals", "confidence")}
    summary = StudySummary.from_dict(older)
    assert summary.holdout_intervals == {}
    assert "interval" not in summary_text(summary)
    assert "| lasso_guess | 0.9999 | 0.3463 | 0.2934 |" in description(summary)


def test_a_skipped_retrain_says_why():
    text = summary_text(Skipped("champion m v3 was trained on this data and config"))
    assert text.startswith("Nothing to do: champion m v3")


def test_the_summary_links_the_studies_and_the_trials_of_the_study():
    from urllib.parse import parse_qs, urlsplit

    from pipeline.report import runs_url

    run_page = "http://h:5000/#/experiments/7/runs/abc?workflowType=machine_learning"
    studies = runs_url(run_page)
    assert studies.startswith("http://h:5000/#/experiments/7/runs?")
    query = parse_qs(urlsplit(studies.replace("#", "")).query)
    assert query["searchFilter"] == ["tags.`pipeline.role` = 'study'"]
    assert query["workflowType"] == ["machine_learning"]
    trials = parse_qs(urlsplit(runs_url(run_page, trials_of="abc").replace("#", "")).query)
    assert trials["searchFilter"] == ["tags.`mlflow.parentRunId` = 'abc'"]
    assert trials["orderByKey"] == ["metrics.`cv_score_mean`"] and trials["orderByAsc"] == ["false"]
    text = summary_text(SUMMARY)
    assert "its trials" in text and "all studies" in text


def test_counts_are_said_in_the_singular_for_one():
    from pipeline.progress import plural

    assert plural(1, "trial") == "1 trial" and plural(3, "trial") == "3 trials"


def test_a_decision_is_read_back_from_its_record_or_from_older_tags():
    from pipeline.summary import Promotion

    made = Promotion("promoted", "first champion", "rmse", "3", 0.5, model="m")
    assert Promotion.from_dict({**made.__dict__, "added_later": 1}) == made
    older = {"promotion": "kept", "promotion_reason": "not better", "registry.model": "m/4"}
    read = Promotion.from_tags(older)
    assert (read.model, read.version, read.status, read.reason) == ("m", "4", "kept", "not better")
    assert Promotion.from_tags({"pipeline.role": "study"}) is None  # never decided
