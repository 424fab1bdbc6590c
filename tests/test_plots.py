from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.plots import coefficient_plot


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
