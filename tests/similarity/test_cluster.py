"""Hierarchical clusters of perturbations and their gene-set terms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import adjusted_rand_score

import pertspectra.similarity as sim


def _planted(sizes=(12, 8, 5), n_features=30, seed=0):
    """Groups of perturbations of the given sizes: group mean plus noise, labels shuffled."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    means = rng.normal(scale=2.0, size=(len(sizes), n_features))
    x = means[groups] + rng.normal(size=(groups.size, n_features))
    order = rng.permutation(groups.size)
    labels = [f"GENE{i:02d}" for i in range(groups.size)]
    return pd.DataFrame(x[order], index=labels), groups[order]


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean"])
def test_cluster_recovers_planted_groups(metric):
    emb, groups = _planted()
    s = sim.similarity_matrix(emb, metric=metric)
    got = sim.cluster(s)  # k chosen by silhouette
    assert got.name == "cluster"
    assert list(got.index) == list(emb.index)
    assert adjusted_rand_score(groups, got.to_numpy()) == 1.0
    # numbered by decreasing size: the 12-group is 1, the 5-group is 3
    assert got.value_counts().to_dict() == {1: 12, 2: 8, 3: 5}
    np.testing.assert_array_equal(got.to_numpy(), np.array([1, 2, 3])[groups])
    fixed = sim.cluster(s, n_clusters=3, method="complete")
    assert adjusted_rand_score(groups, fixed.to_numpy()) == 1.0


def test_cluster_numbering_ties_and_errors():
    # two equal pairs, far apart: sizes tie, so the cluster holding the first label is 1
    s = pd.DataFrame(
        [[1.0, 0.0, 0.9, 0.0], [0.0, 1.0, 0.0, 0.9], [0.9, 0.0, 1.0, 0.0], [0.0, 0.9, 0.0, 1.0]],
        index=["b", "a", "d", "c"],
        columns=["b", "a", "d", "c"],
    )
    got = sim.cluster(s, n_clusters=2)
    assert got.to_dict() == {"b": 1, "a": 2, "d": 1, "c": 2}
    assert sim.cluster(s, n_clusters=1).eq(1).all()
    z = sim.similarity_linkage(s)
    assert z.shape == (3, 4)
    assert z[0, 2] == pytest.approx(0.1)  # first merge at distance 1 - 0.9
    with pytest.raises(ValueError, match=r"n_clusters must be in 1\.\.4"):
        sim.cluster(s, n_clusters=5)
    bad = s.copy()
    bad.iloc[0, 1] = bad.iloc[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sim.cluster(bad)
    with pytest.raises(ValueError, match="unknown linkage"):
        sim.cluster(s, method="centroid")


def test_cluster_terms_finds_the_planted_set():
    emb, groups = _planted()
    clusters = sim.cluster(sim.similarity_matrix(emb))
    third = list(clusters.index[clusters == 3])
    assert third == list(emb.index[groups == 2])  # the 5-group
    rng = np.random.default_rng(4)
    universe = [f"GENE{i:02d}" for i in range(25)] + [f"OTHER{i}" for i in range(75)]
    sets = {f"random{i}": list(rng.choice(universe, 10, replace=False)) for i in range(20)}
    sets["planted"] = [*third[:4], "OTHER1", "OTHER2", "OTHER3"]
    terms = sim.cluster_terms(clusters, sets)
    assert list(terms.columns) == [
        "cluster",
        "gene_set",
        "overlap",
        "set_size",
        "query_size",
        "p",
        "fdr",
    ]
    assert (terms["overlap"] > 0).all()
    top = terms[terms["cluster"] == 3].iloc[0]
    assert top["gene_set"] == "planted"
    assert top["overlap"] == 4
    assert top["query_size"] == 5
    m = len(set().union(*sets.values()))  # default universe: every gene of the sets
    assert top["p"] == pytest.approx(stats.hypergeom.sf(3, m, 7, 5), rel=1e-9)
    assert top["fdr"] < 0.05
    summary = sim.cluster_summary(clusters, terms, n_top=2)
    assert list(summary.index) == [1, 2, 3]
    assert summary.loc[3, "size"] == 5
    assert summary.loc[3, "top_terms"].split("; ")[0] == "planted"
    assert summary.loc[3, "labels"] == ", ".join(third)
    # a label -> gene mapping and an explicit universe
    genes = {lab: f"g_{lab}" for lab in clusters.index}
    mapped = {k: [f"g_{g}" for g in v] for k, v in sets.items()}
    again = sim.cluster_terms(clusters, mapped, genes=genes, universe=set().union(*mapped.values()))
    assert again[again["cluster"] == 3].iloc[0]["gene_set"] == "planted"
