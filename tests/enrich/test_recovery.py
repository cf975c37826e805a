"""The paper's recovery test, perturbation -> programs and program diagnostics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pertspectra.enrich import (
    interpret_programs,
    known_terms,
    log_ratio_scores,
    perturbation_programs,
    program_diagnostics,
    recovery_test,
)

from .conftest import make_model


@pytest.fixture
def library():
    # 20 terms; A (with its STRING partner X) in t0-t5, B (partner Y) in t0-t7
    sets = {f"t{i}": [f"g{i}", f"g{i + 1}"] for i in range(20)}
    for i in range(6):
        sets[f"t{i}"] += ["A", "X"]
    for i in range(8):
        sets[f"t{i}"] += ["B", "Y"]
    sets["t19"] += ["A"]  # A without a partner: not a known term
    return sets


def test_known_terms_need_the_gene_and_a_neighbour(library):
    term_genes = {k: set(v) for k, v in library.items()}
    assert known_terms("A", term_genes, {"A": {"X"}}) == {f"t{i}" for i in range(6)}
    assert known_terms("A", term_genes, {}) == set()


def test_recovery_p_values_are_the_hypergeometric_tail(planted, library):
    # factor_1 carries A (largest |log P[A] - log P[ctrl]|), factor_2 carries B
    scores = log_ratio_scores(planted, ["A", "B"])
    assert scores.loc["A"].idxmax() == "factor_1"
    assert scores.loc["B"].idxmax() == "factor_2"
    terms = pd.DataFrame(
        {
            "program": ["factor_1"] * 4 + ["factor_2"] * 3 + ["factor_0"] * 2,
            "gene_set": ["t0", "t1", "t2", "t10", "t11", "t12", "t0", "t3", "t4"],
            "score": [2.0, 1.5, -1.2, 3.0, 2.0, 2.0, 0.5, 2.0, 2.0],
            "fdr": [0.01, 0.02, 0.01, 0.04, 0.01, 0.01, 0.01, 0.01, 0.01],
        }
    )
    # every term of the library counts as tested (M = 20)
    filler = pd.DataFrame(
        {"program": "factor_0", "gene_set": sorted(library), "score": 0.0, "fdr": 1.0}
    )
    terms = pd.concat([terms, filler], ignore_index=True)
    string = pd.DataFrame(
        {"source": ["A", "Y", "A"], "target": ["X", "B", "Z"], "weight": [0.9, 0.95, 0.5]}
    )
    res = recovery_test(planted, terms, library, string=string, k=1, n_shuffles=3, seed=0)
    real = res.table[res.table["model"] == "pertspectra"].set_index("label")
    # A: known t0-t5 (n=6); drawn from factor_1: t0, t1, t2 (|NES| > 1), t10 -> k=4, x=3
    assert real.loc["A", ["n_known", "n_model", "overlap"]].tolist() == [6, 4, 3]
    assert real.loc["A", "p"] == pytest.approx(stats.hypergeom.sf(2, 20, 6, 4))
    # B: known t0-t7 (n=8); factor_2's t11, t12 (t0 has |score| <= 1) -> x = 0, p = 1
    assert real.loc["B", ["n_known", "n_model", "overlap"]].tolist() == [8, 2, 0]
    assert real.loc["B", "p"] == pytest.approx(1.0)
    np.testing.assert_allclose(real["p_adj"], stats.false_discovery_control(real["p"]))
    assert res.n_terms == 20
    assert not res.informative
    assert res.fraction == pytest.approx(float((real["p_adj"] < 0.001).mean()))
    shuffled = res.table[res.table["model"] == "shuffled"]
    assert sorted(shuffled["shuffle"].unique()) == [1, 2, 3]
    assert "UNINFORMATIVE" in repr(res)
    summary = res.summary().set_index("model")
    assert summary.loc["pertspectra", "tested"] == 2


def test_recovery_skips_perturbations_with_few_known_terms(planted, library):
    terms = pd.DataFrame(
        {"program": "factor_1", "gene_set": sorted(library), "score": 2.0, "fdr": 0.01}
    )
    string = pd.DataFrame({"source": ["A"], "target": ["X"], "weight": [0.9]})
    res = recovery_test(planted, terms, library, string=string, n_shuffles=0)
    t = res.table.set_index("label")
    assert np.isnan(t.loc["B", "p"])  # B has no partner above 0.8: 0 known terms
    with pytest.raises(ValueError, match="not in gene_sets"):
        recovery_test(planted, terms.assign(gene_set="nope"), library, string=string)


def test_perturbation_programs_rank_by_absolute_effect(planted):
    tidy = perturbation_programs(planted)
    assert list(tidy.columns) == ["label", "program", "effect", "rank"]
    a = tidy[tidy["label"] == "A"].set_index("program")
    assert a["rank"].idxmin() == "factor_1"
    assert a.loc["factor_1", "effect"] > 0
    b = tidy[tidy["label"] == "B"]
    assert b.iloc[0]["program"] == "factor_2"
    assert b.iloc[0]["effect"] < 0
    for _, g in tidy.groupby("label"):
        assert sorted(g["rank"]) == [1, 2, 3]
    assert len(perturbation_programs(planted, n_top=1)) == 2


def test_diagnostics_effective_genes_single_gene_programs_and_prior():
    G = 10
    W = np.full((3, G), 1e-9)
    W[0, :] = 1.0  # uniform program
    W[1, 0] = 50.0  # one gene dominates
    W[2, 2:6] = 1.0  # four genes
    W /= W.sum(axis=0, keepdims=True)
    P = np.ones((4, 3))
    model = make_model(P, W, labels=["A", "B"])
    genes = model.genes
    prior = pd.DataFrame({"source": [genes[2], genes[3]], "target": [genes[3], genes[4]]})
    d = program_diagnostics(model, prior=prior, n_top=4)
    from pertspectra.enrich import program_loadings

    L = program_loadings(model).to_numpy()
    ent = -(L * np.log(L)).sum(axis=1)
    np.testing.assert_allclose(d["effective_genes"], np.exp(ent))
    assert d.loc["factor_2", "effective_genes"] == pytest.approx(4.0, rel=1e-4)
    assert d["single_gene"].tolist() == [False, True, False]
    assert d.loc["factor_1", "top_gene"] == "g0"
    # factor_2's top-4 genes g2-g5: 2 of their 6 pairs are prior edges
    assert d.loc["factor_2", "prior_edge_share"] == pytest.approx(2 / 6)
    assert d.loc["factor_2", "prior_density"] == pytest.approx(2 / 45)


def test_interpret_programs_writes_its_folder(planted, tmp_path):
    genes = planted.genes
    sets = {"block0": genes[:20], "block1": genes[20:40], "block2": genes[40:]}
    res = interpret_programs(planted, sets, min_size=5)
    assert res.names["factor_1"] == "factor_1: block1"
    top = res.top_programs("A", n_top=1)
    assert top.loc[0, "program"] == "factor_1"
    assert "block1" in top.loc[0, "top_terms"]
    out = res.write(tmp_path / "programs")
    assert sorted(p.name for p in out.iterdir()) == [
        "diagnostics.csv", "perturbation_programs.csv", "program_terms.csv", "programs.csv",
        "settings.json",
    ]  # fmt: skip
    programs = pd.read_csv(out / "programs.csv")
    assert list(programs.columns) == ["program", "rank", "gene", "weight", "name"]
    with pytest.raises(FileExistsError, match="overwrite"):
        res.write(out)
    res.write(out, overwrite=True)
    with pytest.raises(KeyError, match="no perturbation"):
        res.top_programs("Z")
