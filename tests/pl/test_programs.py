"""pl.programs and pl.perturbation_programs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

from pertspectra import pl

from .conftest import image, tick_texts

GENES = pd.DataFrame(
    {
        "program": ["f0", "f0", "f0", "f1", "f1", "f2"],
        "rank": [1, 2, 3, 1, 2, 1],
        "gene": ["a", "b", "d", "c", "a", "e"],
        "loading": [0.5, 0.3, 0.1, 0.6, 0.2, 0.9],
    }
)


def test_programs_heat_map_of_top_genes():
    names = {"f0": "factor_0: response to interferon-gamma and other cytokines"}
    ax = pl.programs(GENES, names=names, n_genes=2, n_programs=2)
    assert isinstance(ax, Axes)
    np.testing.assert_allclose(image(ax), [[0.5, 0.2], [0.3, 0.0], [0.0, 0.6]])
    cols = tick_texts(ax)
    assert cols[1] == "f1"
    assert cols[0].startswith("factor_0: response to interferon")
    assert len(cols[0]) <= 40
    assert tick_texts(ax, "y") == ["a", "b", "c"]


def test_programs_chosen_order_and_weight_column():
    genes = GENES.rename(columns={"loading": "weight"})  # as programs.csv writes it
    ax = pl.programs(genes, programs=["f2", "f0"], n_genes=1)
    assert tick_texts(ax) == ["f2", "f0"]
    np.testing.assert_allclose(image(ax), [[0.9, 0.0], [0.0, 0.5]])


def test_programs_rejects_bad_input():
    with pytest.raises(ValueError, match="not in genes"):
        pl.programs(GENES, programs=["f9"])
    with pytest.raises(ValueError, match="lacks the columns"):
        pl.programs(GENES.drop(columns="rank"))
    with pytest.raises(ValueError, match="n_genes"):
        pl.programs(GENES, n_genes=0)


EFFECTS = pd.DataFrame(
    {
        "label": ["A", "A", "B", "B", "C"],
        "program": ["f0", "f1", "f0", "f1", "f2"],
        "effect": [2.0, -1.0, 0.5, 4.0, 0.1],
        "rank": [1, 2, 2, 1, 1],
    }
)


def test_perturbation_programs_matrix_and_symmetric_limits():
    ax = pl.perturbation_programs(EFFECTS, cluster=False, names={"f1": "f1: ribosome"})
    assert tick_texts(ax, "y") == ["B", "A", "C"]  # by total |effect|
    assert tick_texts(ax) == ["f1: ribosome", "f0", "f2"]  # by max |effect|
    want = [[4.0, 0.5, 0.0], [-1.0, 2.0, 0.0], [0.0, 0.0, 0.1]]
    np.testing.assert_allclose(image(ax), want)
    assert ax.images[0].get_clim() == (-4.0, 4.0)


def test_perturbation_programs_keeps_the_largest():
    ax = pl.perturbation_programs(EFFECTS, n_programs=2, n_labels=2, cluster=False)
    assert image(ax).shape == (2, 2)
    assert tick_texts(ax, "y") == ["B", "A"]


def test_perturbation_programs_clusters_similar_rows_together():
    rows = []
    for lab, profile in {
        "A1": [3, 3, 0, 0],
        "B1": [0, 0, -3, -3],
        "A2": [2.9, 3.1, 0, 0],
        "B2": [0, 0, -3.1, -2.9],
    }.items():
        rows += [(lab, f"p{j}", v) for j, v in enumerate(profile)]
    table = pd.DataFrame(rows, columns=["label", "program", "effect"])
    ax = pl.perturbation_programs(table)
    order = tick_texts(ax, "y")
    assert abs(order.index("A1") - order.index("A2")) == 1
    assert abs(order.index("B1") - order.index("B2")) == 1
    wide = table.pivot_table(index="label", columns="program", values="effect")
    np.testing.assert_allclose(image(ax), wide.loc[order, tick_texts(ax)].to_numpy())


def test_perturbation_programs_rejects_bad_input():
    with pytest.raises(ValueError, match="lacks the columns"):
        pl.perturbation_programs(EFFECTS, value="score")
    with pytest.raises(ValueError, match="empty"):
        pl.perturbation_programs(EFFECTS.iloc[:0])
