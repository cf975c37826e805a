"""Figures are drawn off-screen (Agg) and closed after every test; small hand-made tables."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

METRIC_COLUMNS = ["regime", "condition", "fold", "label", "method", "metric", "value"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def make_metrics() -> pd.DataFrame:
    """6 combinations x 2 folds: pertspectra 0.8 + 0.01 i, additive 0.6 + 0.01 i, ceiling 0.9.

    mse_top20 is 1 - pearson_delta (so pertspectra is better on it too), and a ``cells``
    regime row that figures of the combinations must ignore.
    """
    rows = []
    for fold in (0, 1):
        for i in range(6):
            for method, v in (("pertspectra", 0.8), ("additive", 0.6), ("ceiling", 0.9)):
                value = v + 0.01 * i + 0.001 * fold
                label = f"A{i}+B"
                rows.append(("combinations", "", fold, label, method, "pearson_delta", value))
                rows.append(("combinations", "", fold, label, method, "mse_top20", 1 - value))
    rows.append(("cells", "", 0, "A0", "pertspectra", "pearson_delta", -5.0))
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


@pytest.fixture
def metrics() -> pd.DataFrame:
    return make_metrics()


@pytest.fixture
def combos(metrics) -> pd.DataFrame:
    return metrics[metrics["regime"] == "combinations"].reset_index(drop=True)


def image(ax) -> np.ndarray:
    """The array of the first image (heat map) on ``ax``."""
    return np.asarray(ax.images[0].get_array())


def tick_texts(ax, axis: str = "x") -> list[str]:
    labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in labels]
