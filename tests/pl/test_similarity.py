"""pl.similarity and pl.precision_recall."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

from pertspectra import pl

from .conftest import image, tick_texts

LABELS = ["A", "C", "B", "D"]
SIM = pd.DataFrame(
    [[1, -0.2, 0.9, -0.1], [-0.2, 1, -0.3, 0.8], [0.9, -0.3, 1, 0.0], [-0.1, 0.8, 0.0, 1]],
    index=LABELS,
    columns=LABELS,
    dtype=float,
)


def _adjacent(order, a, b):
    return abs(order.index(a) - order.index(b)) == 1


def test_similarity_ordered_by_clustering():
    ax = pl.similarity(SIM)
    assert isinstance(ax, Axes)
    order = tick_texts(ax, "y")
    assert order == tick_texts(ax)
    assert _adjacent(order, "A", "B")
    assert _adjacent(order, "C", "D")
    np.testing.assert_allclose(image(ax), SIM.loc[order, order].to_numpy())
    assert ax.images[0].get_clim() == (-1.0, 1.0)


def test_similarity_groups_by_cluster_with_a_strip_and_terms():
    clusters = pd.Series([1, 2, 1, 2], index=LABELS)
    ax = pl.similarity(SIM, clusters=clusters, terms={1: "term one", 2: "term two"})
    order = tick_texts(ax, "y")
    assert {order.index("A"), order.index("B")} in ({0, 1}, {2, 3})
    np.testing.assert_allclose(image(ax), SIM.loc[order, order].to_numpy())
    codes = np.asarray(ax.images[1].get_array()).ravel()  # the cluster strip
    assert list(codes) == [0, 0, 1, 1]
    legend = sorted(t.get_text() for t in ax.get_legend().get_texts())
    assert legend == ["1 (2): term one", "2 (2): term two"]


def test_similarity_without_tick_labels_when_large():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(70, 5))
    labels = [f"p{i}" for i in range(70)]
    sim = pd.DataFrame(np.corrcoef(x), index=labels, columns=labels)
    ax = pl.similarity(sim)
    assert image(ax).shape == (70, 70)
    assert tick_texts(ax, "y") == []


def test_similarity_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        pl.similarity(SIM.iloc[:2])
    with pytest.raises(ValueError, match="same labels"):
        pl.similarity(SIM.loc[:, ["C", "A", "B", "D"]])
    with pytest.raises(ValueError, match="clusters lacks"):
        pl.similarity(SIM, clusters=pd.Series([1, 1], index=["A", "B"]))


def _curves():
    rows = []
    for pairs_file, prevalence in (("corum", 0.2), ("string", 0.1)):
        for embedding, ap in (("gene_change", 0.7), ("programs", 0.5)):
            for recall, precision in ((0.0, 1.0), (0.5, 0.6), (1.0, prevalence)):
                rows.append((pairs_file, embedding, precision, recall, ap, prevalence))
    return pd.DataFrame(
        rows,
        columns=[
            "pairs_file",
            "embedding",
            "precision",
            "recall",
            "average_precision",
            "prevalence",
        ],
    )


def test_precision_recall_one_line_per_curve_and_chance_lines():
    curves = _curves()
    ax = pl.precision_recall(curves)
    lines = ax.get_lines()
    assert len(lines) == 6  # 4 curves + 2 chance lines
    for line in lines[:4]:
        np.testing.assert_allclose(line.get_xdata(), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(lines[0].get_ydata(), [1.0, 0.6, 0.2])
    np.testing.assert_allclose(lines[3].get_ydata(), [1.0, 0.6, 0.1])
    assert [line.get_ydata()[0] for line in lines[4:]] == [0.2, 0.1]
    assert all(line.get_linestyle() == "--" for line in lines[4:])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "corum, gene_change (AP 0.700)"
    assert legend[4] == "chance, corum (0.200)"


def test_precision_recall_without_optional_columns():
    curves = _curves().drop(columns=["average_precision", "prevalence"])
    ax = pl.precision_recall(curves)
    assert len(ax.get_lines()) == 4


def test_precision_recall_rejects_bad_input():
    with pytest.raises(ValueError, match="lacks the columns"):
        pl.precision_recall(_curves().drop(columns="recall"))
