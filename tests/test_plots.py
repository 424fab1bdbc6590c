from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.plots import (
    coefficient_plot,
    coefficient_svg,
    predicted_vs_actual_plot,
    residuals_plot,
)
from pipeline.review_plots import (
    importance_plot,
    optimization_history_plot,
    regularization_path_plot,
    slice_plot,
    sparsity_plot,
    validation_curve_plot,
)


def test_coefficient_plot_sorts_by_magnitude_and_marks_zeros():
    coefs = pd.Series([0.5, 0.0, -2.0, 1.0, 0.0], index=["a", "b", "c", "d", "e"])
    fig = coefficient_plot(coefs, title="l1 α=0.1")
    (ax,) = fig.axes
    assert ax.get_title() == "l1 α=0.1"
    assert ax.get_xlabel().startswith("coefficient")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == "c" and labels[-2] == "d" and labels[-3] == "a"
    bars = ax.patches
    assert len(bars) == 3  # zeros are not bars...
    (zeros,) = ax.collections  # ...but marked at 0
    assert len(zeros.get_offsets()) == 2
    np.testing.assert_array_equal(zeros.get_offsets()[:, 0], [0, 0])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["exactly zero: 2 of 5"]


def test_many_features_show_the_largest_and_say_how_many_are_hidden():
    coefs = pd.Series(np.arange(1, 51, dtype=float), index=[f"f{i}" for i in range(50)])
    fig = coefficient_plot(coefs, title="t", max_features=10)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 10 and labels[-1] == "f49"
    assert any("40 smaller coefficients not shown" in t.get_text() for t in fig.texts)
    assert ax.get_legend() is None


def test_coefficient_svg_draws_the_same_bars_zeros_and_note():
    coefs = pd.Series([0.5, 0.0, -2.0, 1.0, 0.0], index=["a", "b", "c<", "d", "e"])
    svg = coefficient_svg(coefs, title="l1 α=0.1 & more", max_features=4)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "l1 α=0.1 &amp; more" in svg and "c&lt;" in svg
    assert svg.count("<rect x=") == 3  # a, c, d: zeros are not bars...
    assert svg.count("×</text>") == 1  # ...but crossed; one of the two zeros is shown
    assert "exactly zero: 2 of 5" in svg
    assert "1 smaller coefficients not shown" in svg
    frame = pd.DataFrame({"x": [1.0, 0.0], "y": [0.0, -1.0]}, index=["p", "q"])
    svg = coefficient_svg(frame, title="t")
    assert svg.count("exactly zero: 1 of 2") == 2
    assert "coefficients per class" in svg


def _paths() -> dict[str, pd.DataFrame]:
    alphas = np.geomspace(0.01, 10, 5)
    l1 = pd.DataFrame({"a": [2.0, 1.5, 1.0, 0.0, 0.0], "b": [1.0, 0.5, 0.0, 0.0, 0.0]}, alphas)
    l2 = pd.DataFrame({"a": [2.0, 1.8, 1.5, 1.0, 0.5], "b": [1.0, 0.9, 0.7, 0.5, 0.2]}, alphas)
    return {"l1 (Lasso)": l1, "l2 (Ridge)": l2}


def _chosen_lines(ax) -> list:
    return [line for line in ax.get_lines() if line.get_label().startswith("chosen α")]


def test_regularization_path_has_a_panel_per_penalty_a_line_per_feature_and_the_choice():
    fig = regularization_path_plot(_paths(), chosen=("l1", 0.1))
    left, right = fig.axes
    assert (left.get_title(), right.get_title()) == ("l1 (Lasso)", "l2 (Ridge)")
    assert left.get_xscale() == "log" and left.get_xlabel() == "alpha (log scale)"
    features = [ln.get_label() for ln in left.get_lines() if not ln.get_label().startswith("_")]
    assert features[:2] == ["a", "b"]
    (mark,) = _chosen_lines(left)
    assert mark.get_xdata()[0] == 0.1
    assert not _chosen_lines(right)
    assert [t.get_text() for t in fig.legends[0].get_texts()][:2] == ["a", "b"]


def test_sparsity_counts_non_zero_coefficients():
    fig = sparsity_plot(_paths(), chosen=("l1", 0.1))
    (ax,) = fig.axes
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_array_equal(lines["l1 (Lasso)"].get_ydata(), [2, 2, 1, 0, 0])
    np.testing.assert_array_equal(lines["l2 (Ridge)"].get_ydata(), [2, 2, 2, 2, 2])
    assert ax.get_ylabel() == "non-zero coefficients"
    assert _chosen_lines(ax)


TRIALS = pd.DataFrame(
    {
        "number": [0, 1, 2, 3],
        "penalty": ["l1", "l2", "l1", "elasticnet"],
        "alpha": [0.1, 0.1, 1.0, 0.5],
        "l1_ratio": [None, None, None, 0.5],
        "cv_score": [-1.0, -1.2, -0.9, -1.5],
        "cv_std": [0.1, 0.2, 0.1, 0.3],
        "train_score": [-0.8, -1.0, -0.85, -1.4],
    }
)


def test_validation_curve_shows_train_and_cv_per_penalty():
    fig = validation_curve_plot(TRIALS, chosen=("l1", 1.0), scoring="neg_rmse")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["l1 (2 trials)", "l2 (1 trials)", "elasticnet (1 trials)"]
    l1 = fig.axes[0]
    labels = [t.get_text() for t in l1.get_legend().get_texts()]
    assert "training folds" in labels and "CV (± std over folds)" in labels
    assert _chosen_lines(l1)[0].get_xdata()[0] == 1.0
    assert "neg_rmse" in l1.get_ylabel()


def test_optuna_views():
    history = optimization_history_plot(TRIALS, scoring="neg_rmse")
    (ax,) = history.axes
    best = next(ln for ln in ax.get_lines() if ln.get_label() == "best so far")
    np.testing.assert_array_equal(best.get_ydata(), [-1.0, -1.0, -0.9, -0.9])
    imp = importance_plot({"alpha": 0.8, "penalty": 0.2})
    assert [t.get_text() for t in imp.axes[0].get_yticklabels()] == ["penalty", "alpha"]
    sliced = slice_plot(TRIALS, chosen=("l1", 1.0), scoring="neg_rmse")
    assert sliced.axes[0].get_xscale() == "log" and _chosen_lines(sliced.axes[0])


def test_regression_diagnostics():
    y = pd.Series([1.0, 2.0, 3.0], name="price")
    predicted = np.array([1.1, 1.9, 3.3])
    fig = predicted_vs_actual_plot(y, predicted, title="t")
    assert fig.axes[0].get_xlabel() == "actual price"
    res = residuals_plot(y, predicted, title="t")
    np.testing.assert_allclose(res.axes[0].collections[0].get_offsets()[:, 1], [-0.1, 0.1, -0.3])
