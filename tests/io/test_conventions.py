"""read_screen on small synthetic .h5ad conventions and on the shared real screens."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from pertspectra._keys import KEYS
from pertspectra.design import canonical_labels
from pertspectra.io import IO_UNS, detect_convention, read_screen, target_token


def _adata(obs: dict[str, list], var_names: list[str] | None = None, **var) -> ad.AnnData:
    n = len(next(iter(obs.values())))
    var_names = var_names or [f"G{i}" for i in range(4)]
    x = sparse.csr_matrix(np.arange(n * len(var_names), dtype=np.float32).reshape(n, -1))
    return ad.AnnData(
        X=x,
        obs=pd.DataFrame(obs, index=[f"c{i}" for i in range(n)]),
        var=pd.DataFrame(var, index=var_names),
    )


def _labels(adata: ad.AnnData) -> list[str]:
    return adata.obs["perturbation"].astype(str).tolist()


def _accepts(adata: ad.AnnData) -> pd.Series:
    labels, _ = canonical_labels(
        adata.obs["perturbation"], exclude_labels=adata.uns[IO_UNS]["exclude_labels"], min_cells=1
    )
    return labels


def test_gears_labels_and_ensembl_var() -> None:
    a = _adata(
        {"condition": ["A+ctrl", "ctrl+A", "ctrl", "B+A", "A+B"]},
        var_names=["ENSG1", "ENSG2", "ENSG3", "ENSG4"],
        gene_name=["A", "B", None, "A"],
    )
    before = a.copy()
    out = read_screen(a)
    assert out.uns[IO_UNS]["convention"] == "gears"
    assert _labels(out) == ["A", "A", "ctrl", "A+B", "A+B"]
    assert list(out.var_names) == ["A", "B", "ENSG3", "A-1"]
    assert out.var["gene_ids"].tolist() == ["ENSG1", "ENSG2", "ENSG3", "ENSG4"]
    # the input is untouched
    assert list(a.var_names) == list(before.var_names)
    assert list(a.obs.columns) == ["condition"]
    assert KEYS.target_types not in a.uns
    assert out.uns[KEYS.target_types] == {"A": "gene", "B": "gene", "ctrl": "control"}
    assert _accepts(out).notna().all()


def test_input_adata_is_never_modified() -> None:
    a = _adata({"condition": ["A+ctrl", "ctrl"]})
    out = read_screen(a)
    assert out is not a
    assert _labels(out) == ["A", "ctrl"]
    assert "perturbation" not in a.obs


def test_scperturb_underscore_combinations() -> None:
    a = _adata(
        {"perturbation": ["control", "FOXA1_KLF1", "KLF1", "KLF1_FOXA1"], "nperts": [0, 2, 1, 2]}
    )
    out = read_screen(a)
    info = out.uns[IO_UNS]
    assert (info["convention"], info["separator"]) == ("scperturb", "_")
    assert _labels(out) == ["ctrl", "FOXA1+KLF1", "KLF1", "FOXA1+KLF1"]
    assert out.obs["perturbation_raw"].astype(str).tolist()[1] == "FOXA1_KLF1"
    # the separator is an option
    kept = read_screen(a, separator="+")
    assert _labels(kept)[1] == "FOXA1_KLF1"


def test_replogle_gene_column() -> None:
    a = _adata(
        {
            "gene": ["non-targeting", "AAAS", "AAAS", "TP53"],
            "gene_id": ["non-targeting", "ENSG1", "ENSG1", "ENSG2"],
            "sgID_AB": ["nt_1", "AAAS_1", "AAAS_2", "TP53_1"],
        }
    )
    out = read_screen(a)
    assert out.uns[IO_UNS]["convention"] == "replogle"
    assert out.uns[IO_UNS]["perturbation_key"] == "gene"
    assert _labels(out) == ["ctrl", "AAAS", "AAAS", "TP53"]
    assert out.obs["sgID_AB"].tolist() == a.obs["sgID_AB"].tolist()


def test_sceptre_none_detected_is_excluded_not_control() -> None:
    a = _adata({"target": ["non-targeting", "none_detected", "STAT1", "STAT1+JAK2"]})
    out = read_screen(a)
    assert out.uns[IO_UNS]["convention"] == "sceptre"
    assert _labels(out) == ["ctrl", "none_detected", "STAT1", "JAK2+STAT1"]
    assert out.uns[KEYS.target_types]["none_detected"] == "exclude"
    assert out.uns[IO_UNS]["exclude_labels"] == ["none_detected"]
    assert out.uns[IO_UNS]["n_excluded_cells"] == 1
    labels = _accepts(out)
    assert labels.isna().tolist() == [False, True, False, False]


def test_missing_labels_become_an_exclude_label(caplog) -> None:
    a = _adata({"perturbation": ["control", None, "A", "A"]})
    with caplog.at_level(logging.WARNING, logger="pertspectra.io"):
        out = read_screen(a)
    assert _labels(out) == ["ctrl", "unassigned", "A", "A"]
    assert "unassigned" in out.uns[IO_UNS]["exclude_labels"]
    assert "no perturbation label" in caplog.text


def test_declared_enhancers_stay_distinct_from_genes() -> None:
    a = _adata({"perturbation": ["non-targeting", "GATA1", "GATA1+MYC", "CCNE2"]})
    a.uns["target_type"] = {"GATA1": "enhancer", "MYC": "enhancer", "CCNE2": "promoter"}
    out = read_screen(a)
    assert _labels(out) == ["ctrl", "GATA1_enhancer", "GATA1_enhancer+MYC_enhancer", "CCNE2"]
    assert out.uns[KEYS.target_types]["CCNE2"] == "gene"
    assert out.uns[KEYS.target_types]["GATA1_enhancer"] == "enhancer"
    # a user mapping wins over the stored one
    over = read_screen(a, target_types={"GATA1": "gene"})
    assert _labels(over)[2] == "GATA1+MYC_enhancer"
    assert target_token("GATA1", "enhancer") != "GATA1"
    assert "+" not in target_token("GATA1", "enhancer")


def test_rereading_the_output_is_idempotent(tmp_path) -> None:
    a = _adata({"perturbation": ["non-targeting", "none_detected", "chr3.5275_top_two", "TAF12"]})
    out = read_screen(a)
    assert _labels(out)[2] == "chr3.5275_top_two_enhancer"
    out.write_h5ad(tmp_path / "out.h5ad")
    again = read_screen(tmp_path / "out.h5ad")
    assert again.uns[IO_UNS]["convention"] == "pertspectra"
    assert _labels(again) == _labels(out)
    assert again.uns[KEYS.target_types] == out.uns[KEYS.target_types]
    assert again.uns[IO_UNS]["exclude_labels"] == ["none_detected"]


def test_condition_covariate_is_not_a_perturbation() -> None:
    a = _adata(
        {
            "perturbation": ["control", "LCK", "LCK", "ZAP70"],
            "condition": ["stimulated", "unstimulated", "stimulated", "stimulated"],
        }
    )
    assert detect_convention(a) == ("scperturb", "perturbation")
    out = read_screen(a)
    assert _labels(out) == ["ctrl", "LCK", "LCK", "ZAP70"]
    assert out.obs["condition"].tolist() == a.obs["condition"].tolist()


def test_errors() -> None:
    a = _adata({"cluster": ["x", "y"]})
    with pytest.raises(ValueError, match="cannot detect"):
        read_screen(a)
    with pytest.raises(ValueError, match="unknown convention"):
        read_screen(a, convention="seurat")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no column 'guide'"):
        read_screen(a, perturbation_key="guide")
    with pytest.raises(ValueError, match="expects an obs column 'condition'"):
        read_screen(a, convention="gears")
    with pytest.raises(TypeError, match="path or an AnnData"):
        read_screen(42)  # type: ignore[arg-type]
    b = _adata({"perturbation": ["control", "basal"]})
    with pytest.raises(ValueError, match="reserved"):
        read_screen(b)
    c = _adata({"perturbation": ["control", "A+B"]})
    with pytest.raises(ValueError, match="contain"):
        read_screen(c, separator="_")


# --- shared real screens ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def norman_fixture(screen_path):
    return read_screen(screen_path("norman2019_cpa_format_fixture_50x50.h5ad"))


def test_norman_cpa_fixture(norman_fixture, screen_path) -> None:
    out = norman_fixture
    raw = ad.read_h5ad(screen_path("norman2019_cpa_format_fixture_50x50.h5ad"))
    assert out.uns[IO_UNS]["perturbation_key"] == "condition"
    assert out.uns[IO_UNS]["convention"] in ("gears", "cpa")
    cond = raw.obs["condition"].astype(str)
    assert cond.str.startswith("ctrl+").any()
    assert cond.str.endswith("+ctrl").any()
    for r, lab in zip(cond, _labels(out), strict=True):
        toks = sorted(t for t in r.split("+") if t != "ctrl")
        assert lab == ("+".join(toks) or "ctrl")
    assert out.var["gene_ids"].str.startswith("ENSG").all()
    assert list(out.var_names) == raw.var["feature_name"].astype(str).tolist()
    assert raw.var_names.str.startswith("ENSG").all()  # input file untouched
    labels = _accepts(out)
    assert labels.notna().all()
    assert int((labels == "ctrl").sum()) == 6


@pytest.fixture(scope="module")
def schraivogel(screen_path):
    return read_screen(screen_path("schraivogel2020_k562_tapseq_crispri_74genes.h5ad"))


def test_schraivogel_enhancers_and_none_detected(schraivogel) -> None:
    out = schraivogel
    types = out.uns[KEYS.target_types]
    assert "GATA1" in out.var_names  # the gene is measured ...
    assert types["GATA1_enhancer"] == "enhancer"  # ... and the enhancer is another token
    assert "GATA1" not in types
    assert {t for t, k in types.items() if k == "enhancer"} == {
        f"{n}_enhancer" for n in ("GATA1", "HS2", "MYC", "ZFPM2")
    }
    assert sum(k == "gene" for k in types.values()) == 10
    assert types["CCNE2"] == "gene"
    assert types["none_detected"] == "exclude"
    tokens = {t for lab in out.obs["perturbation"].cat.categories for t in lab.split("+")}
    assert "GATA1" not in tokens
    labels = _accepts(out)
    assert int(labels.isna().sum()) == 558
    assert int((labels == "ctrl").sum()) == 4041
    assert "ctrl" in out.obs["perturbation"].cat.categories


@pytest.fixture(scope="module")
def gasperini(screen_path):
    return read_screen(screen_path("gasperini2019_k562_highmoi_crispri_366genes_sceptre.h5ad"))


def test_gasperini_loci_are_enhancers(gasperini) -> None:
    out = gasperini
    types = out.uns[KEYS.target_types]
    enh = sorted(t for t, k in types.items() if k == "enhancer")
    genes = sorted(t for t, k in types.items() if k == "gene")
    assert len(enh) == 17
    assert "chr3.5275_top_two_enhancer" in enh
    assert len(genes) == 10
    assert {"COX4I1", "TAF12", "MRPL9", "CITED2"} <= set(genes)
    assert set(genes) <= set(out.var_names)
    info = out.uns[IO_UNS]
    assert info["n_excluded_cells"] == 32364
    assert info["n_combination_cells"] == 512
    labels = _accepts(out)
    assert int(labels.isna().sum()) == 32364
    assert int((labels == "ctrl").sum()) == 2047


def test_papalexi_target_column(screen_path) -> None:
    path = screen_path("papalexi2021_thp1_eccite_299genes.h5ad")
    out = read_screen(path)
    assert out.uns[IO_UNS]["perturbation_key"] == "target"
    cats = list(out.obs["perturbation"].cat.categories)
    assert "CD274" not in cats
    assert len(cats) == 26
    assert "CD274" not in out.obs["target"].cat.categories  # unused category dropped
    assert "CD274" not in out.uns[KEYS.target_types]
    labels = _accepts(out)
    assert int((labels == "ctrl").sum()) == 2386
    assert int((labels == "SPI1").sum()) == 48


def test_datlinger_condition_is_stimulation(screen_path) -> None:
    path = screen_path("datlinger2017_jurkat_cropseq_2000genes_scperturbR.h5ad")
    out = read_screen(path)
    info = out.uns[IO_UNS]
    assert (info["convention"], info["perturbation_key"]) == ("scperturb", "perturbation")
    assert set(out.obs["condition"].cat.categories) == {"stimulated", "unstimulated"}
    assert "stimulated" not in out.uns[KEYS.target_types]
    labels = _accepts(out)
    assert int((labels == "ctrl").sum()) == 200
    assert labels.nunique() == 21
