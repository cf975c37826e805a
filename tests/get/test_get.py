"""``ps.get``: stored results back as tidy DataFrames, through an h5ad round trip."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import pertspectra as ps


def test_results_survive_h5ad_and_come_back_tidy(toy_stats, tmp_path):
    stats = toy_stats.copy()
    model = ps.train.fit(stats, n_factors=4, max_epochs=200, progress=False, seed=0, store=True)
    genes = model.genes
    sets = {"a": genes[:15], "b": genes[15:30], "c": genes[30:]}
    programs = ps.enrich.interpret_programs(model, sets, min_size=5)
    ps.enrich.store_programs(stats, programs)
    emb = ps.similarity.embedding(model, kind="gene_change")
    sim = ps.similarity.similarity_matrix(emb)
    groups = ps.similarity.cluster(sim, n_clusters=2)
    ps.similarity.store_similarity(stats, similarity=sim, clusters=groups)
    path = tmp_path / "stats.h5ad"
    stats.write_h5ad(path)
    back = ad.read_h5ad(path)

    tidy = ps.get.loadings(back)
    expected = ps.enrich.program_loadings(model)
    got = tidy.pivot(index="program", columns="gene", values="weight").loc[
        expected.index, expected.columns
    ]
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-10)
    P = ps.get.perturbation_loadings(back)
    assert len(P) == model.P.size
    pd.testing.assert_frame_equal(
        ps.get.program_terms(back).reset_index(drop=True), programs.terms, check_dtype=False
    )
    moved = ps.get.perturbation_programs(back)
    assert list(moved.columns[:4]) == ["label", "program", "effect", "rank"]
    assert ps.get.program_diagnostics(back)["program"].tolist() == model.factor_names
    pairs = ps.get.similarity(back)
    n = len(sim)
    assert len(pairs) == n * (n - 1) // 2
    first = pairs.iloc[0]
    assert first["similarity"] == pytest.approx(sim.loc[first["label1"], first["label2"]])
    assert set(ps.get.clusters(back)["cluster"]) == {1, 2}
    with pytest.raises(KeyError, match="store_similarity"):
        ps.get.similarity_benchmark(back)
    with pytest.raises(KeyError, match="recovery"):
        ps.get.recovery(back)
    with pytest.raises(KeyError, match="no fit stored"):
        ps.get.loadings(ad.AnnData(np.zeros((2, 2))))
