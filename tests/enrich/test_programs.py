"""Programs in gene space, scored against gene sets (ulm, GSEA, ORA)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pertspectra as ps
from pertspectra.enrich import (
    best_terms,
    overrepresentation,
    program_activity,
    program_loadings,
    program_names,
    program_sizes,
    score_programs,
    top_genes,
)


def test_loadings_are_scaled_and_renormalized(planted):
    model = planted
    model.gene_scale = np.linspace(1.0, 3.0, len(model.genes))
    L = program_loadings(model)
    scaled = model.W * (model.gene_scale + model.config.delta)
    np.testing.assert_allclose(L.to_numpy(), scaled / scaled.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(L.sum(axis=1), 1.0)
    np.testing.assert_allclose(program_sizes(model), scaled.sum(axis=1))


def test_activity_is_change_from_control_times_size(planted):
    act = program_activity(planted)
    assert list(act.index) == ["A", "B"]
    size = program_sizes(planted).to_numpy()
    # A's row minus ctrl's row (basal cancels), weighted by size
    np.testing.assert_allclose(act.loc["A"], (planted.P[0] - planted.P[2]) * size)
    assert act.loc["A"].idxmax() == "factor_1"
    assert act.loc["B"].idxmin() == "factor_2"


def test_hypergeometric_matches_scipy():
    universe = [f"g{i}" for i in range(20)]
    sets = {"S": universe[:5], "T": universe[5:12]}
    res = overrepresentation({"q": ["g0", "g1", "g2", "g13"]}, sets, universe=universe)
    row = res.set_index("gene_set").loc["S"]
    assert row["overlap"] == 3
    assert row["p"] == pytest.approx(stats.hypergeom.sf(2, 20, 5, 4))
    assert row["p"] == pytest.approx(
        sum(stats.hypergeom.pmf(x, 20, 5, 4) for x in range(3, 5)), rel=1e-12
    )
    # BH over both sets tested, T has no overlap (p = 1) and is not listed
    assert list(res["gene_set"]) == ["S"]
    assert row["fdr"] == pytest.approx(min(1.0, row["p"] * 2))


def test_ulm_equals_a_direct_regression(planted):
    rng = np.random.default_rng(1)
    genes = planted.genes
    sets = {f"s{i}": list(rng.choice(genes, 12, replace=False)) for i in range(6)}
    res = score_programs(planted, sets, method="ulm", min_size=5)
    L = program_loadings(planted)
    for _, row in res.sample(8, random_state=0).iterrows():
        y = np.log1p(len(genes) * L.loc[row["program"]].to_numpy())
        x = np.isin(genes, sets[row["gene_set"]]).astype(float)
        fit = stats.linregress(x, y)
        assert row["score"] == pytest.approx(fit.slope / fit.stderr, rel=1e-6)
        assert row["p"] == pytest.approx(fit.pvalue, rel=1e-6)
    # BH per program
    for _, g in res.groupby("program"):
        np.testing.assert_allclose(
            np.sort(g["fdr"].to_numpy()),
            np.sort(stats.false_discovery_control(g["p"].to_numpy())),
        )


def test_each_method_names_the_planted_program(planted):
    genes = planted.genes
    sets = {"block0": genes[:20], "block1": genes[20:40], "block2": genes[40:], "mixed": genes[::3]}
    for method in ("ulm", "ora", "gsea"):
        res = score_programs(planted, sets, method=method, min_size=5, n_top=15, permutations=200)
        best = res.sort_values(["program", "score"], ascending=[True, False]).groupby("program")
        assert best["gene_set"].first().to_dict() == {
            "factor_0": "block0",
            "factor_1": "block1",
            "factor_2": "block2",
        }, method
        if method == "gsea":  # the authors' p adjustment keeps p above 1 / (n + 1)
            assert res["p"].min() >= 1 / 201
    names = program_names(planted.factor_names, res, fdr=1.0)
    assert names["factor_1"] == "factor_1: block1"


def test_size_filter_applies_after_cutting_to_the_model_genes(planted):
    sets = {"big": [*planted.genes[:8], *(f"unmeasured{i}" for i in range(50))]}
    with pytest.raises(ValueError, match="no gene set has 10-300"):
        score_programs(planted, sets)
    res = score_programs(planted, sets, min_size=5)
    assert set(res["set_size"]) == {8}


def test_top_genes_and_best_terms(planted):
    top = top_genes(planted, n_top=3)
    assert len(top) == 9
    assert set(top.loc[top["program"] == "factor_1", "gene"]) <= set(planted.genes[20:40])
    np.testing.assert_allclose(top.groupby("program")["rank"].max(), 3)
    terms = pd.DataFrame(
        {
            "program": ["f0", "f0", "f0", "f1"],
            "gene_set": ["a (GO:1)", "b", "c", "d"],
            "score": [2.0, 3.0, -4.0, 1.0],
            "fdr": [0.01, 0.01, 0.001, 0.5],
        }
    )
    best = best_terms(terms, n_top=5, fdr=0.05)
    assert best["gene_set"].tolist() == ["b", "a (GO:1)"]  # negative and non-significant dropped
    assert program_names(["f0", "f1"], terms).tolist() == ["f0: b", "f1"]


def test_planted_program_in_a_simulated_screen_is_its_top_term():
    adata = ps.datasets.simulate_screen(
        truth="pertspectra", n_genes=200, n_programs=4, n_single=8, n_double=0, seed=3
    )
    sim = adata.uns["simulation"]
    stats_ = ps.stats.compute_group_stats(adata, perturbation_key="perturbation", progress=False)
    # the simulation's truth is the paper's generative form: fit that parametrization
    model = ps.train.fit(
        stats_, parametrization="paper", n_factors=5, max_epochs=1500, progress=False, seed=0
    )
    truth = sim["W"][1:]  # drop the basal factor
    sets = {f"program{k}": list(np.array(model.genes)[truth[k] > 0]) for k in range(len(truth))}
    names = program_names(model.factor_names, score_programs(model, sets, method="ulm"))
    moved = ps.enrich.perturbation_programs(model, names=names, n_top=1).set_index("label")
    # perturbations that activate exactly one planted program: their top program is named by it
    P = sim["P"].drop(columns="basal")
    checked = 0
    for label, row in P.drop(index="ctrl").iterrows():
        up = row[row > 1.0].index
        if len(up) == 1:
            assert moved.loc[label, "name"].endswith(f": {up[0]}"), (label, moved.loc[label])
            checked += 1
    assert checked >= 4


def test_ulm_agrees_with_decoupler():
    dc = pytest.importorskip("decoupler")
    rng = np.random.default_rng(2)
    genes = [f"g{i}" for i in range(300)]
    values = pd.DataFrame(rng.normal(size=(4, 300)), index=list("abcd"), columns=genes)
    sets = {f"s{i}": list(rng.choice(genes, 25, replace=False)) for i in range(5)}
    ours = ps.enrich.ulm(values, sets).pivot(index="program", columns="gene_set", values="score")
    net = pd.DataFrame([(k, g) for k, v in sets.items() for g in v], columns=["source", "target"])
    theirs, _ = dc.mt.ulm(values, net, tmin=1, verbose=False)
    np.testing.assert_allclose(ours.loc[theirs.index, theirs.columns], theirs, rtol=1e-6)


def test_ulm_perfect_separation_is_infinite_not_nan():
    values = pd.DataFrame(
        [[1.0] * 5 + [0.0] * 5], index=["p"], columns=[f"g{i}" for i in range(10)]
    )
    res = ps.enrich.ulm(values, {"s": [f"g{i}" for i in range(5)]})
    assert res["score"].iloc[0] > 1e6  # r = 1 up to rounding: t huge (or inf), never NaN
    assert res["p"].iloc[0] < 1e-12


def test_unweighted_gsea_scores_equal_the_running_sum():
    rng = np.random.default_rng(4)
    genes = [f"g{i}" for i in range(200)]
    values = pd.DataFrame(rng.normal(size=(3, 200)), index=list("abc"), columns=genes)
    sets = {
        f"s{k}": list(rng.choice(genes, int(rng.integers(5, 40)), replace=False)) for k in range(12)
    }
    res = ps.enrich.prerank_unweighted(values, sets, permutations=300, seed=0)
    for _, row in res.iterrows():
        ranked = values.loc[row["program"]].sort_values(ascending=False).index
        expected = ps.enrich.running_sum_es(ranked.isin(sets[row["gene_set"]]))
        assert row["es"] == pytest.approx(expected, abs=1e-12)
    assert res["p_nominal"].between(0, 1).all()
    # a planted top set is significant, its NES large
    sets["top"] = list(values.loc["a"].sort_values(ascending=False).index[:15])
    top = ps.enrich.prerank_unweighted(values, sets, permutations=300, seed=0)
    hit = top[(top["program"] == "a") & (top["gene_set"] == "top")].iloc[0]
    assert hit["es"] == pytest.approx(1.0)
    assert hit["p_nominal"] == 0.0
    assert hit["nes"] > 2


def test_unweighted_gsea_agrees_with_gseapy():
    gseapy = pytest.importorskip("gseapy")
    rng = np.random.default_rng(0)
    genes = [f"g{i}" for i in range(400)]
    values = pd.DataFrame(rng.normal(size=(1, 400)), index=["p"], columns=genes)
    sets = {
        f"s{k}": list(rng.choice(genes, int(rng.integers(10, 60)), replace=False))
        for k in range(20)
    }
    sets["top"] = list(values.loc["p"].sort_values(ascending=False).index[:20])
    ours = ps.enrich.prerank_unweighted(values, sets, permutations=1000, seed=0).set_index(
        "gene_set"
    )
    theirs = gseapy.prerank(
        rnk=values.loc["p"].sort_values(ascending=False), gene_sets=sets, min_size=1,
        max_size=500, permutation_num=1000, weight=0, seed=0, threads=1, outdir=None,
        no_plot=True, verbose=False,
    ).res2d.set_index("Term")  # fmt: skip
    es = pd.to_numeric(theirs["ES"])
    np.testing.assert_allclose(ours["es"].reindex(es.index), es, atol=1e-12)
    nes = pd.to_numeric(theirs["NES"])
    np.testing.assert_allclose(ours["nes"].reindex(nes.index), nes, atol=0.15)
    assert ours.loc["top", "p_nominal"] == 0.0
