from __future__ import annotations

import numpy as np
import pytest

from pertspectra.evaluate import matched_correlation


def test_matched_correlation_finds_the_permutation():
    rng = np.random.default_rng(0)
    a = rng.random((4, 50))
    b = np.vstack(
        [a[[2, 0, 3, 1]] * 3.0 + 1.0, rng.random((2, 50))]
    )  # permuted, rescaled, extra rows
    np.testing.assert_allclose(matched_correlation(a, b), 1.0)
    # matching is one-to-one: two copies of one row cannot both match it
    dup = np.vstack([a[0], a[0]])
    m = matched_correlation(dup, a)
    assert m.max() == pytest.approx(1.0)
    assert m.min() < 0.9


def test_matched_correlation_constant_row_and_shapes():
    a = np.vstack([np.ones(10), np.arange(10.0)])
    m = matched_correlation(a, a)
    np.testing.assert_allclose(sorted(m), [0.0, 1.0])
    with pytest.raises(ValueError, match="same number of columns"):
        matched_correlation(a, np.ones((2, 9)))
