"""Programs, perturbation -> programs and similarity per condition of a condition model (mcfaline23).

McFaline-Figueroa 2023: 9 knockouts + control in three glioma lines; PLK4 has 46 cells in A172,
below the 50-cell filter, so A172 has no PLK4 (and the tables must not invent one).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import pertspectra as ps
from pertspectra.enrich import ALL_CONDITIONS, ConditionPrograms, interpret_conditions

pytestmark = pytest.mark.filterwarnings("ignore:the fit did not converge")
CONDITIONS = ["A172", "T98G", "U87MG"]
N_SHARED, N_OWN = 8, 2


@pytest.fixture(scope="module")
def mcfaline(shared) -> ad.AnnData:
    adata = ad.read_h5ad(shared("combinatorial/perturbench_devel.h5ad"))
    return adata[adata.obs["dataset"] == "mcfaline23"].copy()


@pytest.fixture(scope="module")
def model(mcfaline):
    return ps.train.fit_conditions(
        mcfaline, perturbation_key="condition", condition_key="cell_type", n_factors=N_SHARED,
        condition_factors=N_OWN, max_epochs=40, progress=False, seed=0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def go_sets(shared) -> dict[str, list[str]]:
    return ps.priors.read_gmt(shared("knowledge/go_bp_human_2022-07.gmt.gz"))


@pytest.fixture(scope="module")
def result(model, go_sets) -> ConditionPrograms:
    return interpret_conditions(model, go_sets)


def test_shared_programs_have_one_gene_profile_in_every_condition(model):
    loadings = ps.enrich.condition_loadings(model)
    assert list(loadings.index[:N_SHARED]) == [f"shared_{k}" for k in range(N_SHARED)]
    assert len(loadings) == N_SHARED + N_OWN * len(CONDITIONS)
    for c in CONDITIONS:
        view = ps.enrich.program_loadings(model.condition(c))
        # the claim that lets the shared programs be scored once
        np.testing.assert_allclose(view.iloc[:N_SHARED], loadings.iloc[:N_SHARED], atol=1e-12)
        np.testing.assert_allclose(view.iloc[N_SHARED:], loadings.loc[[f"{c}_0", f"{c}_1"]])


def test_programs_table_lists_shared_programs_once_and_each_conditions_own(result):
    genes, terms = result.genes, result.terms
    assert list(genes.columns[:3]) == ["condition", "block", "program"]
    shared = genes[genes["block"] == "shared"]
    assert set(shared["condition"]) == {ALL_CONDITIONS}
    assert sorted(shared["program"].unique()) == [f"shared_{k}" for k in range(N_SHARED)]
    assert (shared.groupby("program").size() == 20).all()  # once, not once per condition
    own = genes[genes["block"] == "own"]
    assert set(own["condition"]) == set(CONDITIONS)
    for c in CONDITIONS:
        assert set(own.loc[own["condition"] == c, "program"]) == {f"{c}_0", f"{c}_1"}
    # terms: every (program, gene set) once; shared blocks tagged the same way
    assert not terms.duplicated(["program", "gene_set"]).any()
    assert set(terms.groupby("block")["condition"].unique().loc["shared"]) == {ALL_CONDITIONS}
    assert terms["program"].nunique() == N_SHARED + N_OWN * len(CONDITIONS)
    d = result.diagnostics
    assert list(d.columns[:3]) == ["condition", "block", "name"]
    assert (d["block"] == "shared").sum() == N_SHARED
    assert set(d.loc[d["block"] == "own", "condition"]) == set(CONDITIONS)


def test_perturbation_table_has_a_row_per_condition_label_and_program(model, result):
    perts = result.perturbations
    assert list(perts.columns) == [
        "condition", "label", "program", "block", "effect", "rank", "name"
    ]  # fmt: skip
    pairs = set(zip(perts["condition"], perts["label"], strict=True))
    assert ("A172", "PLK4") not in pairs  # 46 cells in A172: not fitted there
    assert {("T98G", "PLK4"), ("U87MG", "PLK4")} <= pairs
    singles = {lab for lab in model.labels if lab != "ctrl"}
    for c in CONDITIONS:
        want = {lab for lab in model.condition_labels[c] if lab != "ctrl"}
        assert {lab for cc, lab in pairs if cc == c} == want
        assert want <= singles
        part = perts[perts["condition"] == c]
        # every program of the condition, shared and own, and none of another condition
        per_label = part.groupby("label")["program"].apply(set)
        assert all(p == set(model.factor_names(c)) for p in per_label)
        assert set(part.loc[part["block"] == "own", "program"]) == {f"{c}_0", f"{c}_1"}
        # the same numbers as the one-condition function on the condition's view
        alone = ps.enrich.perturbation_programs(model.condition(c))
        merged = part.merge(alone, on=["label", "program"], suffixes=("", "_alone"))
        assert len(merged) == len(part)
        np.testing.assert_allclose(merged["effect"], merged["effect_alone"])
        assert (merged["rank"] == merged["rank_alone"]).all()
    # the shared programs' effects differ between conditions (P is fitted per condition)
    a = perts[(perts["condition"] == "T98G") & (perts["program"] == "shared_0")]
    b = perts[(perts["condition"] == "U87MG") & (perts["program"] == "shared_0")]
    assert not np.allclose(a.sort_values("label")["effect"], b.sort_values("label")["effect"])


def test_one_condition_view_and_top_programs(result):
    a172 = result.condition("A172")
    assert isinstance(a172, ps.enrich.Programs)
    assert list(a172.diagnostics.index) == [
        *[f"shared_{k}" for k in range(N_SHARED)], "A172_0", "A172_1"
    ]  # fmt: skip
    assert "PLK4" not in set(a172.perturbations["label"])
    top = result.top_programs("PLK4", n_top=2)
    assert set(top["condition"]) == {"T98G", "U87MG"}
    assert (top.groupby("condition").size() == 2).all()
    assert set(top["block"]) <= {"shared", "own"}
    with pytest.raises(KeyError, match="unknown condition"):
        result.condition("HeLa")
    with pytest.raises(KeyError, match="no perturbation 'PLK4'"):
        result.top_programs("PLK4", condition="A172")


def test_written_folder_has_the_plain_file_names(result, tmp_path):
    out = result.write(tmp_path / "programs")
    assert {p.name for p in out.iterdir()} == {
        "programs.csv", "program_terms.csv", "perturbation_programs.csv", "diagnostics.csv",
        "settings.json",
    }  # fmt: skip
    perts = pd.read_csv(out / "perturbation_programs.csv")
    assert {"condition", "block"} <= set(perts.columns)
    diag = pd.read_csv(out / "diagnostics.csv", index_col=0)
    assert set(diag["block"]) == {"shared", "own"}
    assert result.settings["conditions"] == CONDITIONS
    assert result.settings["shared_programs"] == N_SHARED


def test_plain_model_is_refused(toy_model, go_sets):
    with pytest.raises(TypeError, match="interpret_programs"):
        interpret_conditions(toy_model, go_sets)


# ------------------------------------------------ similarity per condition (library)
def test_similarity_per_condition_and_stacked(model, mcfaline):
    emb = ps.similarity.condition_embeddings(model, kind="gene_change")
    assert list(emb) == CONDITIONS
    assert "PLK4" not in emb["A172"].index
    assert "PLK4" in emb["T98G"].index
    sims = {c: ps.similarity.similarity_matrix(e) for c, e in emb.items()}
    stacked = ps.similarity.stack_conditions(sims)
    assert stacked.index.names == ["condition", "label"]
    assert np.isnan(stacked.loc[("A172", "MAPK1"), "PLK4"])
    back = ps.similarity.split_conditions(stacked)
    for c in CONDITIONS:
        pd.testing.assert_frame_equal(back[c], sims[c], check_names=False)
    # P embeddings: the shared programs and the condition's own
    p = ps.similarity.condition_embeddings(model, kind="P")
    assert list(p["U87MG"].columns) == model.factor_names("U87MG")
    # data baselines: statistics per (label, condition), split by condition
    stats = ps.stats.compute_group_stats(
        mcfaline, perturbation_key="condition", condition_key="cell_type", progress=False
    )
    data = ps.similarity.condition_data(stats)
    assert list(data) == CONDITIONS
    assert "ctrl" in data["A172"].obs_names
    assert "PLK4" not in data["A172"].obs_names
    change = ps.similarity.condition_embeddings(model, kind="data_change", data=data)
    assert list(change["A172"].index) == list(emb["A172"].index)
    with pytest.raises(ValueError, match="condition_key"):
        ps.similarity.condition_data(
            ps.stats.compute_group_stats(mcfaline, perturbation_key="condition", progress=False)
        )


def test_condition_agreement_finds_a_perturbation_that_does_the_same():
    rng = np.random.default_rng(0)
    genes = [f"g{j}" for j in range(50)]
    base = pd.DataFrame(rng.normal(size=(4, 50)), index=["A", "B", "C", "D"], columns=genes)
    other = pd.DataFrame(rng.normal(size=(4, 50)), index=base.index, columns=genes)
    other.loc["A"] = 2 * base.loc["A"] + 0.1  # A does the same (scaled), the others do not
    other = other.drop(index="D")  # D not fitted in y
    table = ps.similarity.condition_agreement({"x": base, "y": other})
    assert list(table["label"]) == ["A", "B", "C"]
    row = table.set_index("label")
    assert row.loc["A", "similarity"] == pytest.approx(1.0)
    assert abs(row.loc["B", "similarity"]) < 0.5
    assert row.loc["A", "others"] < 0.5
    assert (table["n_features"] == 50).all()
    assert (table["n_others"] == 2).all()
    pcs = base.rename_axis(columns="component")
    with pytest.raises(ValueError, match="separate PCAs"):
        ps.similarity.condition_agreement({"x": pcs, "y": pcs})
