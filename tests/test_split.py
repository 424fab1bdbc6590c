from __future__ import annotations

from pipeline.config import SeedRegressionData
from pipeline.data import load
from pipeline.split import holdout


def test_holdout_sizes_and_reproducibility():
    ds = load(SeedRegressionData())
    a = holdout(ds, test_size=0.2, random_state=42, shuffle=True)
    b = holdout(ds, test_size=0.2, random_state=42, shuffle=True)
    c = holdout(ds, test_size=0.2, random_state=7, shuffle=True)
    assert (len(a.X_train), len(a.X_test)) == (80, 20)
    assert list(a.X_test.index) == list(b.X_test.index)
    assert list(a.X_test.index) != list(c.X_test.index)
    assert set(a.X_train.index).isdisjoint(a.X_test.index)
    assert list(a.y_test.index) == list(a.X_test.index)


def test_no_shuffle_keeps_the_last_rows_for_the_holdout():
    ds = load(SeedRegressionData(n_samples=10))
    parts = holdout(ds, test_size=0.3, random_state=0, shuffle=False)
    assert list(parts.X_test.index) == [7, 8, 9]
