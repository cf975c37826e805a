"""Edge table -> aligned sparse prior, and add_prior on AnnData."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import pertspectra.priors as pp
from pertspectra._keys import KEYS


def _adata(names):
    a = ad.AnnData(X=np.zeros((3, len(names)), dtype=np.float32))
    a.var_names = list(names)
    return a


def test_prior_matrix_symmetric_max_zero_diagonal():
    edges = pd.DataFrame(
        {
            "source": ["A", "B", "A", "C", "A", "X", "D"],
            "target": ["B", "A", "B", "A", "A", "A", "C"],
            "weight": [0.5, 0.9, 0.7, 0.4, 1.0, 0.8, 0.0],
        }
    )
    names = ["C", "A", "B", "D"]
    mat = pp.prior_matrix(edges, names)
    assert isinstance(mat, sp.csr_matrix)
    assert mat.shape == (4, 4)
    assert mat.dtype == np.float32
    dense = mat.toarray()
    want = np.zeros((4, 4))
    want[1, 2] = want[2, 1] = 0.9  # A-B: max over both orientations
    want[0, 1] = want[1, 0] = 0.4  # C-A
    np.testing.assert_allclose(
        dense, want, atol=1e-7
    )  # A-A self loop, unknown X, zero weight dropped
    binary = pp.prior_matrix(edges, names, binary=True).toarray()
    np.testing.assert_array_equal(binary, (want > 0).astype(np.float32))
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        pp.prior_matrix(edges.assign(weight=-1.0), names, binary=True)
    np.testing.assert_array_equal(
        pp.prior_matrix(edges.assign(weight=5.0), names, binary=True).toarray()[0], [0, 1, 0, 1]
    )


def test_prior_matrix_aliases_and_errors():
    edges = pd.DataFrame({"source": ["SEPTIN2"], "target": ["TP53"], "weight": [0.8]})
    mat = pp.prior_matrix(edges, ["SEPT2", "TP53"], aliases={"SEPTIN2": "SEPT2"})
    assert mat[0, 1] == mat[1, 0] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="not unique"):
        pp.prior_matrix(edges, ["TP53", "TP53"])
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        pp.prior_matrix(edges.assign(weight=[700.0]), ["SEPTIN2", "TP53"])
    with pytest.raises(ValueError, match="lacks column"):
        pp.prior_matrix(edges.rename(columns={"target": "to"}), ["TP53"])


def test_read_edge_list_csv_and_tsv(tmp_path):
    csv = tmp_path / "e.csv"
    csv.write_text("source,target,weight\nA,B,0.5\nB,C,0.2\nC,D,0.9\n")
    e = pp.read_edge_list(csv, genes=["A", "B", "C"])
    assert e.to_dict("list") == {"source": ["A", "B"], "target": ["B", "C"], "weight": [0.5, 0.2]}
    tsv = tmp_path / "e.tsv"
    tsv.write_text("from\tto\nA\tB\n")
    e = pp.read_edge_list(tsv, source="from", target="to")
    assert e["weight"].tolist() == [1.0]
    with pytest.raises(ValueError, match="not in the header"):
        pp.read_edge_list(tsv)


def test_add_prior_writes_varp_uns_and_report(tmp_path, string_files):
    links, _info = string_files
    a = _adata(["GENEA", "GENEB", "GENEC", "GENED", "GENEE", "GENEF", "NOTINSTRING"])
    a.uns[KEYS.target_types] = {"GENEA": "gene", "chr8:1000": "enhancer"}
    report = pp.add_prior(a, links, perturbed=["GENEA", "GENEF", "chr8:1000", "GENEQ"])
    mat = a.varp[KEYS.prior]
    assert sp.issparse(mat)
    assert (mat != mat.T).nnz == 0
    assert mat.diagonal().max() == 0
    assert report.n_edges == 3  # A-B, B-C, D-E
    assert report.n_genes_with_edges == 5
    assert report.perturbed_without_edges == ["GENEF"]
    assert report.perturbed_not_measured == ["GENEQ"]
    assert report.non_gene_targets == ["chr8:1000"]
    assert report.n_perturbed == 3
    assert report.unmapped == ["GENEF", "NOTINSTRING"]
    assert "GENEF" in report.summary()
    uns = a.uns[KEYS.prior_info]
    assert uns["version"] == "12.0"
    assert uns["min_score"] == pytest.approx(0.7)
    assert list(uns["channels"]) == ["combined_score"]
    assert uns["n_edges"] == 3
    # h5ad round trip of the stored provenance and matrix
    out = tmp_path / "with_prior.h5ad"
    a.write_h5ad(out)
    back = ad.read_h5ad(out)
    assert (back.varp[KEYS.prior] != mat).nnz == 0
    assert back.uns[KEYS.prior_info]["n_edges"] == 3
    assert list(back.uns[KEYS.prior_info]["perturbed_without_edges"]) == ["GENEF"]


def test_add_prior_from_dataframe_binary_and_key():
    a = _adata(["A", "B", "C"])
    edges = pd.DataFrame({"source": ["A", "B"], "target": ["B", "C"], "weight": [0.3, 0.9]})
    report = pp.add_prior(a, edges, binary=True, min_score=0.5, key_added="custom")
    assert report.n_edges == 1
    assert a.varp["custom"].toarray()[1, 2] == 1.0
    assert a.uns["custom"]["binary"] is True or a.uns["custom"]["binary"] == 1


def test_add_prior_harmonizes_var_names_for_lookup(gene_tables, string_table):
    genes, aliases = gene_tables
    # STRING names SEPTIN2-SEPTIN7 (0.997) and MDM2-TP53 (0.999); the data names them otherwise
    var = ["SEPT2", "7-Sep", "TP53", "ENSG00000135679.25", "NOT_A_GENE"]
    a = _adata(var)
    report = pp.add_prior(
        a, string_table, genes_table=genes, aliases_table=aliases, perturbed=["SEPTIN2"]
    )
    assert list(a.var_names) == var  # lookup only
    mat = a.varp[KEYS.prior].toarray()
    assert mat[0, 1] == mat[1, 0] == pytest.approx(0.997)
    assert mat[2, 3] == mat[3, 2] == pytest.approx(0.999)
    assert (mat > 0).sum() == 4
    assert report.harmonized == {
        "exact": 1,
        "ensembl": 1,
        "mangled": 1,
        "alias": 1,
        "ambiguous": 0,
        "unmapped": 1,
    }
    assert report.unmapped == ["NOT_A_GENE"]
    assert report.perturbed_without_edges == []
    assert report.perturbed_not_measured == []
    # without the tables nothing but TP53 is found
    b = _adata(var)
    assert pp.add_prior(b, string_table).n_edges == 0


def test_add_prior_perturbed_given_by_previous_symbol(gene_tables, string_table):
    genes, aliases = gene_tables
    a = _adata(["SEPTIN2", "SEPTIN7", "GAPDH"])
    report = pp.add_prior(
        a,
        string_table,
        genes_table=genes,
        aliases_table=aliases,
        perturbed=["SEPT2", "2-Sep", "XYZ1"],
    )
    assert report.perturbed_not_measured == ["XYZ1"]
    assert report.perturbed_without_edges == []
    assert report.n_perturbed == 3


def test_add_prior_from_generic_edge_list_file(tmp_path):
    path = tmp_path / "net.csv"
    path.write_text("source,target,weight\nA,B,0.2\nB,C,0.9\nC,Z,0.5\nA,A,1.0\n")
    a = _adata(["A", "B", "C", "D"])
    report = pp.add_prior(a, path)  # no threshold for a generic list
    assert report.n_edges == 2
    assert report.unmapped == ["D"]
    assert a.uns[KEYS.prior_info]["format"] == "edge_list"
    assert pp.add_prior(a, path, min_score=0.5).n_edges == 1
    with pytest.raises(ValueError, match="STRING files only"):
        pp.add_prior(a, path, channels="experiments")


def test_perturbed_genes_leave_named_controls_out():
    obs = pd.DataFrame({"label": ["NT_NT", "A", "A+B", "NT_NT"]}, index=[f"c{i}" for i in range(4)])
    adata = ad.AnnData(np.zeros((4, 2)), obs=obs)
    # NT_NT is not a built-in control name: by default it reads as a target
    assert pp.perturbed_genes(adata, "label") == ["NT_NT", "A", "B"]
    assert pp.perturbed_genes(adata, "label", controls=["NT_NT"]) == ["A", "B"]
    with pytest.raises(ValueError, match="NT"):
        pp.perturbed_genes(adata, "label", controls=["NT"])
