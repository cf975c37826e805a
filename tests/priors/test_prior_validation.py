"""Prior knowledge checked before any heavy work: graphs, gene universes, gene sets, pair files.

Every bad input ends in exit status 1 with one line naming the file and what to do, and leaves
the inputs byte-identical.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

import pertspectra as ps
from pertspectra._keys import KEYS
from pertspectra.cli import app

runner = CliRunner()


def _digest(path: Path) -> str:
    if path.is_dir():
        return hashlib.sha256(
            b"".join(
                str(p.relative_to(path)).encode() + p.read_bytes()
                for p in sorted(path.rglob("*"))
                if p.is_file()
            )
        ).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fails(args: list[str], inputs: list[Path], *expected: str) -> str:
    before = {p: _digest(p) for p in inputs}
    res = runner.invoke(app, args)
    assert res.exit_code == 1, res.output
    assert res.output.strip().splitlines()[-1].startswith("error: "), res.output
    assert "Traceback" not in res.output
    for text in expected:
        assert text in res.output, res.output
    assert {p: _digest(p) for p in inputs} == before
    return res.output


@pytest.fixture(scope="module")
def files(tmp_path_factory, toy_inputs):
    """The toy inputs and a prior file built from their chain network."""
    folder = tmp_path_factory.mktemp("knowledge")
    prior = folder / "prior.h5ad"
    res = runner.invoke(
        app,
        ["prior", str(toy_inputs["data"]), "--string", str(toy_inputs["net"]), "--out", str(prior)],
    )
    assert res.exit_code == 0, res.output
    return {**toy_inputs, "prior": prior, "folder": folder}


def _fit_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "fit", str(data), "--perturbation-key", "perturbation", "--factors", "3",
        "--epochs", "5", "--no-progress", "--out", str(out), *extra,
    ]  # fmt: skip


# --- the graph itself --------------------------------------------------------------------------


def test_check_prior_matrix_errors_and_repair(caplog):
    good = sp.csr_matrix(np.array([[0, 0.5, 0], [0.5, 0, 1.0], [0, 1.0, 0]]))
    assert (ps.priors.check_prior_matrix(good, n_genes=3) != good).nnz == 0
    loops = good + sp.eye(3)
    with caplog.at_level(logging.WARNING, logger="pertspectra"):
        fixed = ps.priors.check_prior_matrix(loops, source="prior file x.h5ad")
    assert fixed.diagonal().tolist() == [0, 0, 0]
    assert (fixed != good).nnz == 0
    assert "x.h5ad has 3 self-loop(s)" in caplog.text
    assert loops.diagonal().tolist() == [1, 1, 1]  # the input is not modified
    asym = good.toarray()
    asym[0, 1] = 0.2
    with pytest.raises(ValueError, match=r"prior file x.h5ad is not symmetric.*A.maximum\(A.T\)"):
        ps.priors.check_prior_matrix(asym, source="prior file x.h5ad")
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*divide by 1000"):
        ps.priors.check_prior_matrix(good * 700)
    with pytest.raises(ValueError, match="outside"):
        ps.priors.check_prior_matrix(-good)
    nan = good.toarray()
    nan[0, 1] = nan[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        ps.priors.check_prior_matrix(nan)
    with pytest.raises(ValueError, match="has 3 genes but the data has 4"):
        ps.priors.check_prior_matrix(good, n_genes=4)
    with pytest.raises(ValueError, match="square"):
        ps.priors.check_prior_matrix(np.zeros((2, 3)))


def test_fit_checks_a_prior_stored_in_varp(toy_stats, caplog):
    stats = toy_stats.copy()
    g = stats.n_vars
    mat = sp.random(g, g, density=0.1, random_state=0, format="csr")
    stats.varp[KEYS.prior] = mat  # not symmetric
    with pytest.raises(ValueError, match="not symmetric"):
        ps.train.fit(stats, n_factors=2, max_epochs=2, progress=False)
    sym = mat.maximum(mat.T).tolil()
    sym.setdiag(1.0)  # symmetric, with self-loops
    sym = sym.tocsr()
    stats.varp[KEYS.prior] = sym
    with caplog.at_level(logging.WARNING, logger="pertspectra"):
        model = ps.train.fit(stats, n_factors=2, max_epochs=2, progress=False)
    assert "self-loop" in caplog.text
    assert np.isfinite(model.W).all()
    stats.varp[KEYS.prior] = sym * 5
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        ps.train.fit(stats, n_factors=2, max_epochs=2, progress=False)


# --- gene universes ----------------------------------------------------------------------------


def test_add_prior_refuses_another_gene_universe(tmp_path):
    net = tmp_path / "net.csv"
    net.write_text("source,target,weight\nTP53,MDM2,0.9\nSTAT1,JAK2,0.8\nA1,A2,0.5\n")
    ens = ad.AnnData(np.zeros((2, 3), dtype=np.float32))
    ens.var_names = ["ENSG00000141510", "ENSG00000135679", "ENSG00000115415"]
    with pytest.raises(ValueError, match=r"net.csv: 0 of its 6 gene names match.*harmonize_genes"):
        ps.priors.add_prior(ens, net)
    assert KEYS.prior not in ens.varp
    # a partial overlap is normal: coverage reported, no error
    part = ad.AnnData(np.zeros((2, 3), dtype=np.float32))
    part.var_names = ["TP53", "MDM2", "ENSG00000115415"]
    report = ps.priors.add_prior(part, net)
    assert report.n_genes_with_edges == 2
    assert report.unmapped == ["ENSG00000115415"]
    # weights on STRING's 0-1000 scale in a generic list: the file is named
    net.write_text("source,target,weight\nTP53,MDM2,900\n")
    with pytest.raises(ValueError, match=r"net.csv: 1 edge weight\(s\) outside \[0, 1\]"):
        ps.priors.add_prior(part, net)


def test_prior_command_other_gene_universe(tmp_path, toy_adata):
    data = tmp_path / "ens.h5ad"
    a = toy_adata.copy()
    a.var_names = [f"ENSG{i:011d}" for i in range(a.n_vars)]
    a.write_h5ad(data)
    net = tmp_path / "string.tsv"
    net.write_text("source\ttarget\tweight\nTP53\tMDM2\t0.9\nSTAT1\tJAK2\t0.8\n")
    out = tmp_path / "p.h5ad"
    _fails(
        ["prior", str(data), "--string", str(net), "--out", str(out)],
        [data, net],
        "string.tsv: 0 of its 4 gene names match the var_names (60)",
        "'ENSG00000000000'",
        "harmonize_genes",
    )
    assert not out.exists()


# --- prior files --------------------------------------------------------------------------------


def test_prior_file_holds_only_the_graph(files, toy_adata):
    prior = files["prior"]
    back = ad.read_h5ad(prior)
    assert back.n_obs == 0
    assert list(back.var_names) == list(toy_adata.var_names)
    assert back.varp[KEYS.prior].nnz == 2 * (toy_adata.n_vars - 1)
    info = back.uns[KEYS.prior_info]
    assert info["graph_only"]
    assert info["data_sha256"] == hashlib.sha256(files["data"].read_bytes()).hexdigest()
    assert "pertspectra" in info["versions"]
    assert prior.stat().st_size < files["data"].stat().st_size / 10
    # read back aligned to the data's genes in any order
    genes = list(toy_adata.var_names)[::-1]
    mat, info = ps.priors.read_prior(prior, genes=genes)
    dense = mat.toarray()
    assert dense[0, 1] == dense[1, 0] == pytest.approx(0.9)  # gene59-gene58
    assert dense[0, 2] == 0


def test_prior_full_copy_on_request(files, tmp_path):
    out = tmp_path / "full.h5ad"
    args = ["prior", str(files["data"]), "--string", str(files["net"]), "--out", str(out)]
    res = runner.invoke(app, [*args, "--full-copy"])
    assert res.exit_code == 0, res.output
    full = ad.read_h5ad(out)
    assert full.n_obs > 0
    assert KEYS.prior in full.varp
    # `fit` finds the graph in a full copy, and --prior reads one too
    mat, _ = ps.priors.read_prior(out, genes=full.var_names)
    assert mat.nnz == full.varp[KEYS.prior].nnz


def test_fit_with_prior_file_uses_it(files, tmp_path):
    res = runner.invoke(
        app, _fit_args(files["data"], tmp_path / "m", "--prior", str(files["prior"]))
    )
    assert res.exit_code == 0, res.output
    model = ps.model.load_model(tmp_path / "m")
    assert f"{len(model.genes) - 1} undirected edges" in model.training["prior"]


def test_fit_refuses_a_prior_file_as_data(files, tmp_path):
    _fails(
        _fit_args(files["prior"], tmp_path / "m"),
        [files["prior"]],
        "is a prior file from `pertspectra prior`",
        f"--prior {files['prior']}",
    )
    assert not (tmp_path / "m").exists()


def test_fit_refuses_a_prior_file_of_other_genes(files, tmp_path, toy_adata):
    other = toy_adata[:, :50].copy()
    other_data = tmp_path / "other.h5ad"
    other.write_h5ad(other_data)
    _fails(
        _fit_args(other_data, tmp_path / "m", "--prior", str(files["prior"])),
        [other_data, files["prior"]],
        "was built for other genes: 50 of the data's 50 genes are in it",
        "extra e.g. ['gene50'",
        "pertspectra prior DATA",
    )
    assert not (tmp_path / "m").exists()
    renamed = toy_adata.copy()
    renamed.var_names = [f"ENSG{i:011d}" for i in range(renamed.n_vars)]
    renamed_data = tmp_path / "renamed.h5ad"
    renamed.write_h5ad(renamed_data)
    _fails(
        _fit_args(renamed_data, tmp_path / "m", "--prior", str(files["prior"])),
        [renamed_data, files["prior"]],
        "0 of its 60 genes match",
        "harmonize_genes",
    )


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda m: m * 1000, "outside [0, 1]"),
        (lambda m: sp.triu(m).tocsr(), "not symmetric"),
        (lambda m: m.multiply(np.nan).tocsr(), "NaN or infinite"),
    ],
    ids=["weights", "asymmetric", "nan"],
)
def test_fit_refuses_a_hand_edited_prior_file(files, tmp_path, edit, expected):
    bad = ad.read_h5ad(files["prior"])
    bad.varp[KEYS.prior] = edit(sp.csr_matrix(bad.varp[KEYS.prior]))
    path = tmp_path / "bad_prior.h5ad"
    bad.write_h5ad(path)
    _fails(
        _fit_args(files["data"], tmp_path / "m", "--prior", str(path)),
        [files["data"], path],
        f"prior file {path}",
        expected,
    )


def test_fit_refuses_a_file_that_is_not_a_prior(files, tmp_path):
    junk = tmp_path / "junk.h5ad"
    junk.write_bytes(b"not hdf5 at all")
    _fails(
        _fit_args(files["data"], tmp_path / "m", "--prior", str(junk)),
        [files["data"], junk],
        f"prior file {junk} is not a readable .h5ad",
    )
    _fails(
        _fit_args(files["data"], tmp_path / "m", "--prior", str(files["data"])),
        [files["data"]],
        "holds no varp['pertspectra_prior']",
    )


# --- gene sets and pair files --------------------------------------------------------------------


def test_programs_gene_sets_naming_no_measured_gene(files, tmp_path):
    gmt = tmp_path / "go_ensembl.gmt"
    gmt.write_text("SET1\tdesc\tENSG0001\tENSG0002\nSET2\tdesc\tENSG0003\tENSG0004\n")
    out = tmp_path / "programs"
    _fails(
        ["programs", str(files["model"]), "--gene-sets", str(gmt), "--out", str(out)],
        [files["model"], gmt],
        f"gene-set file {gmt}: none of its 2 gene sets names a measured gene",
        "'ENSG0001'",
        "'gene0'",
        "harmonize_genes",
    )
    assert not out.exists()


def test_similarity_pairs_naming_no_perturbed_gene(files, tmp_path):
    pairs = tmp_path / "CORUM.txt"
    pairs.write_text("entity1,entity2\nTP53,MDM2\nSTAT1,JAK2\n")
    out = tmp_path / "sim"
    _fails(
        ["similarity", str(files["model"]), "--pairs", str(pairs), "--out", str(out)],
        [files["model"], pairs],
        f"pairs file {pairs}: none of its 2 pairs names a perturbed gene",
        "'MDM2'",
        "'G0'",
    )
    assert not out.exists()
    gmt = tmp_path / "mouse.gmt"
    gmt.write_text("SET1\tdesc\tTrp53\tMdm2\n")
    _fails(
        ["similarity", str(files["model"]), "--gene-sets", str(gmt), "--out", str(out)],
        [files["model"], gmt],
        f"gene-set file {gmt}: none of its 1 gene sets names a measured gene",
    )


def test_pairs_and_gene_sets_with_partial_overlap_pass():
    sets = {"a": ["gene0", "X"], "b": ["Y"]}
    assert ps.priors.check_gene_sets(sets, ["gene0", "gene1"], source="f.gmt") == 1
    pairs = pd.DataFrame({"entity1": ["G0", "TP53"], "entity2": ["G1", "MDM2"]})
    assert ps.priors.check_pairs_named(pairs, ["G0", "G1", "G2"], source="p.txt") == 1
