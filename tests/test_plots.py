from __future__ import annotations

import re
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.image import imread
from matplotlib.text import Text

from pipeline.plots import (
    coefficient_plot,
    coefficient_svg,
    confusion_matrix_plot,
    feature_styles,
    predicted_vs_actual_plot,
    residuals_plot,
    roc_plot,
    shorten,
    spread,
)
from pipeline.review_plots import (
    importance_plot,
    optimization_history_plot,
    regularization_path_plot,
    slice_plot,
    sparsity_plot,
    validation_curve_plot,
)

MAX_WIDTH = 1000  # pixels: what MLflow's artifact viewer shows without shrinking the text


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


def _labels(ax) -> dict[str, Text]:
    """The names written beside a path panel, by text."""
    return {t.get_text(): t for t in ax.texts}


def test_regularization_path_has_a_panel_per_penalty_a_line_per_feature_and_the_choice():
    fig = regularization_path_plot(_paths(), chosen=("l1", 0.1))
    top, bottom = fig.axes  # stacked, sharing alpha
    assert (top.get_title(loc="left"), bottom.get_title(loc="left")) == ("l1 (Lasso)", "l2 (Ridge)")
    assert top.get_xscale() == "log" and bottom.get_xlabel().startswith("alpha (log scale")
    assert top.get_xlim() == (10, 0.01)  # decreasing: the lines end where they are largest
    features = [ln.get_label() for ln in top.get_lines() if not ln.get_label().startswith("_")]
    assert features[:2] == ["a", "b"]
    (mark,) = _chosen_lines(top)
    assert mark.get_xdata()[0] == 0.1
    assert [t.get_text() for t in top.get_legend().get_texts()] == ["chosen α=0.1"]
    assert not _chosen_lines(bottom) and bottom.get_legend() is None
    for ax in (top, bottom):  # each line named at its end (the smallest alpha), in its colour
        labels = _labels(ax)
        assert set(labels) == {"a", "b"}
        assert labels["a"].get_position()[1] > labels["b"].get_position()[1]


def _wide_paths(n_features: int, n_alphas: int = 20) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    alphas = np.geomspace(1e-4, 100, n_alphas)
    names = [f"num__feature_{i}" for i in range(n_features)]
    names[0] = "cat__neighborhood_Northridge_Heights"
    true = rng.normal(size=n_features)
    true[0] = 3.0  # the long name is among the largest
    l1 = np.sign(true) * np.maximum(np.abs(true) - 2 * alphas[:, None], 0)
    l2 = true / (1 + alphas[:, None])
    return {
        "l1 (Lasso)": pd.DataFrame(l1, index=alphas, columns=names),
        "l2 (Ridge)": pd.DataFrame(l2, index=alphas, columns=names),
    }


def test_path_lines_are_told_apart_by_colour_and_style_and_named_without_overlap(tmp_path):
    paths = _wide_paths(25)
    fig = regularization_path_plot(paths, chosen=("l2", 1.0), max_features=25)
    fig.savefig(tmp_path / "path.png")  # lays the names out
    for ax in fig.axes:
        lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith(("_", "chosen"))]
        assert len(lines) == 25
        assert len({(ln.get_color(), ln.get_linestyle()) for ln in lines}) == 25
        labels = _labels(ax)  # the largest, as many as fit beside the panel
        assert len(labels) == 16 and "cat__nei…e_Heights" in labels  # long names shortened
        assert {shorten(ln.get_label(), 18) for ln in lines[:16]} == set(labels)
        assert all(len(name) <= 18 for name in labels)
        boxes = sorted((t.get_window_extent() for t in labels.values()), key=lambda b: b.y0)
        assert all(not low.overlaps(high) for low, high in pairwise(boxes))
        assert min(b.x0 for b in boxes) > ax.get_window_extent().x1  # right of the lines
    assert len(set(feature_styles(80))) == 80  # 20 hues × 4 line styles before a repeat


def test_path_of_thousands_of_features_draws_the_largest_and_counts_the_rest(tmp_path):
    fig = regularization_path_plot(_wide_paths(5000), chosen=("l1", 0.01))
    assert "(largest 16 features shown, 4984 more hidden)" in fig.get_suptitle()
    for ax in fig.axes:
        assert len(ax.get_lines()) <= 16 + 2  # the features, the zero line, the chosen alpha
        assert len(ax.texts) == 16
    assert _pixels(fig, tmp_path)[0] <= MAX_WIDTH


def test_spread_keeps_labels_apart_near_their_targets():
    np.testing.assert_allclose(
        spread(np.array([0.0, 1.0, 2.0]), gap=0.5, low=-1, high=3), [0, 1, 2]
    )
    placed = spread(np.array([1.0, 1.0, 1.0, 1.1]), gap=0.25, low=0, high=2)
    assert np.all(np.diff(placed) >= 0.25 - 1e-12)
    assert placed[0] < 1 < placed[-1]  # spread around the crowd, not all pushed upwards
    placed = spread(np.array([1.9, 2.0]), gap=0.25, low=0, high=2)  # against the top
    np.testing.assert_allclose(placed, [1.75, 2.0])


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


def _study_trials(n: int, *, penalty: str = "l1", seed: int = 0) -> pd.DataFrame:
    """``n`` trials with ``Study.trials_frame``'s columns: a CV score peaking at alpha 0.01."""
    rng = np.random.default_rng(seed)
    log_alpha = rng.uniform(-4, 2, n)
    cv = 0.9 - 0.05 * (log_alpha + 2) ** 2 + rng.normal(0, 0.003, n)
    return pd.DataFrame(
        {
            "number": range(n),
            "penalty": penalty,
            "alpha": 10**log_alpha,
            "l1_ratio": None,
            "cv_score": cv,
            "cv_std": 0.02,
            "cv_se": 0.009,
            "n_nonzero": np.round(30 - 5 * log_alpha).astype(int),
            "train_score": cv + 0.02,
        }
    )


def _errorbars(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def _legend(fig) -> list[str]:
    (legend,) = fig.legends
    return [t.get_text() for t in legend.get_texts()]


def test_validation_curve_shows_train_and_cv_per_penalty():
    fig = validation_curve_plot(TRIALS, chosen=("l1", 1.0), scoring="neg_rmse")
    *panels, zoom = fig.axes
    titles = [ax.get_title() for ax in panels]
    assert titles == ["l1 (2 trials)", "l2 (1 trials)", "elasticnet (1 trials)"]
    assert zoom.get_title().startswith("Near the best: l1")
    labels = _legend(fig)
    assert "training folds (mean per bin)" in labels
    assert "CV mean per alpha bin (± std over folds)" in labels  # no cv_se column here
    assert "best CV: trial 2 (-0.9)" in labels
    l1 = panels[0]
    assert _chosen_lines(l1)[0].get_xdata()[0] == 1.0
    assert "neg_rmse" in l1.get_ylabel()


def test_validation_curve_summarizes_many_trials_by_alpha_and_marks_the_picks(tmp_path):
    trials = _study_trials(150)
    best = trials.loc[trials["cv_score"].idxmax()]
    fig = validation_curve_plot(trials, chosen=("l1", best["alpha"]), scoring="r2")
    panel, zoom = fig.axes
    for ax in (panel, zoom):
        (bars,) = _errorbars(ax)  # one line of bin means, not an error bar per trial
        x = bars.lines[0].get_xdata()
        assert 2 <= len(x) <= 12 and np.all(np.diff(x) > 0)
    (dots,) = [c for c in panel.collections if c.get_label() == "one trial's CV"]
    assert len(dots.get_offsets()) == 150 and dots.get_alpha() <= 0.5
    labels = _legend(fig)
    star = next(s for s in labels if s.startswith("best CV"))
    assert star.startswith(f"best CV: trial {best['number']} ") and "± 0.009 SE" in star
    pick = next(s for s in labels if s.startswith("one-SE pick: trial "))
    number = int(re.search(r"trial (\d+)", pick).group(1))
    assert trials.loc[number, "cv_score"] >= best["cv_score"] - 0.009
    assert trials.loc[number, "alpha"] > best["alpha"]  # simpler: a stronger penalty
    (threshold,) = [ln for ln in zoom.get_lines() if ln.get_label() == "best − 1 SE"]
    assert threshold.get_ydata()[0] == pytest.approx(best["cv_score"] - 0.009)
    low, high = zoom.get_ylim()  # the zoom shows the margin: 4 SE below the best, 2 above
    assert (low, high) == pytest.approx((best["cv_score"] - 0.036, best["cv_score"] + 0.018))
    assert _pixels(fig, tmp_path)[0] <= MAX_WIDTH


def test_validation_curve_of_few_trials_draws_each_of_them():
    trials = _study_trials(10)
    fig = validation_curve_plot(trials, chosen=("l1", 0.01), scoring="r2")
    (bars,) = _errorbars(fig.axes[0])
    np.testing.assert_allclose(bars.lines[0].get_xdata(), np.sort(trials["alpha"]))
    expected = trials.sort_values("alpha")["cv_score"].to_numpy(float)
    np.testing.assert_allclose(bars.lines[0].get_ydata(), expected)


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


def _pixels(fig, tmp_path) -> tuple[int, int]:
    """The saved PNG's width and height, read back from the file."""
    path = tmp_path / "figure.png"
    fig.savefig(path)
    height, width = imread(path).shape[:2]
    return width, height


def _smaller_than(fig, points: float) -> list[str]:
    """Visible text in the figure smaller than ``points``."""
    texts = fig.findobj(lambda a: isinstance(a, Text) and a.get_visible() and a.get_text())
    return [t.get_text() for t in texts if t.get_fontsize() < points]


def test_coefficient_plot_of_many_classes_wraps_its_panels(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(40)]
    frame = pd.DataFrame(rng.normal(size=(40, 5)), index=names, columns=list("abcde"))
    frame.iloc[:3] = 0.0
    fig = coefficient_plot(frame, title="five classes")
    assert len(fig.axes) == 5
    assert len({round(ax.get_position().x0, 3) for ax in fig.axes}) == 3  # 3 to a row
    assert fig.axes[0].get_title() == "a\nexactly zero: 3 of 40"
    notes = [t.get_text() for t in fig.texts]
    assert "coefficients on standardized features; 10 smaller coefficients not shown" in notes
    assert _pixels(fig, tmp_path)[0] <= MAX_WIDTH


def test_coefficient_svg_stays_narrow_with_many_classes():
    frame = pd.DataFrame(np.ones((3, 7)), index=["p", "q", "r"], columns=list("abcdefg"))
    svg = coefficient_svg(frame, title="t")
    width, height = (int(v) for v in re.search(r'width="(\d+)" height="(\d+)"', svg).groups())
    assert width <= 900
    xs = [float(x) for x in re.findall(r' x2?="([-\d.]+)"', svg)]
    ys = [float(y) for y in re.findall(r' y2?="([-\d.]+)"', svg)]
    assert max(xs) <= width and max(ys) <= height
    assert svg.count("exactly zero: 0 of 3") == 7 and svg.count(">p</text>") == 3  # 3 rows


def _every_figure(n_features: int, n_trials: int) -> dict:
    rng = np.random.default_rng(1)
    names = [f"feature_{i}" for i in range(n_features)]
    coefs = pd.Series(rng.normal(size=n_features), index=names)
    trials = pd.concat(
        [_study_trials(n_trials), _study_trials(n_trials // 4, penalty="l2", seed=1)],
        ignore_index=True,
    ).assign(number=lambda t: range(len(t)))
    paths = _wide_paths(n_features)
    y = pd.Series(rng.normal(size=200), name="price")
    labels = pd.Series(rng.integers(0, 3, 200))
    return {
        "coefficients": lambda: coefficient_plot(coefs, title="Coefficients of the best model"),
        "path": lambda: regularization_path_plot(paths, chosen=("l1", 0.01)),
        "sparsity": lambda: sparsity_plot(paths, chosen=("l1", 0.01)),
        "validation": lambda: validation_curve_plot(trials, chosen=("l1", 0.01), scoring="r2"),
        "history": lambda: optimization_history_plot(trials, scoring="r2"),
        "slice": lambda: slice_plot(trials, chosen=("l1", 0.01), scoring="r2"),
        "importance": lambda: importance_plot({"alpha": 0.8, "penalty": 0.2}),
        "predicted": lambda: predicted_vs_actual_plot(y, rng.normal(size=200), title="t"),
        "residuals": lambda: residuals_plot(y, rng.normal(size=200), title="t"),
        "confusion": lambda: confusion_matrix_plot(
            labels, rng.integers(0, 3, 200), labels=[0, 1, 2], title="t"
        ),
        "roc": lambda: roc_plot(
            labels, rng.dirichlet([1, 1, 1], 200), classes=[0, 1, 2], title="t"
        ),
    }


@pytest.mark.parametrize("name", list(_every_figure(30, 40)))
def test_every_figure_fits_mlflows_artifact_viewer(name, tmp_path):
    """900 px wide at 100 dpi, no text under 9 pt: readable in the viewer, unshrunk; with
    5,000 features and 200 trials too."""
    fig = _every_figure(5000, 200)[name]()
    assert fig.dpi == 100 and fig.get_figwidth() == 9
    assert _pixels(fig, tmp_path) == (900, round(fig.get_figheight() * 100))
    assert not _smaller_than(fig, 9)
