"""The ``pertspectra prior`` command."""

from __future__ import annotations

import hashlib

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pertspectra.cli import app as main_app


@pytest.fixture
def app():
    return main_app


@pytest.fixture
def h5ad(tmp_path):
    names = ["GENEA", "GENEB", "GENEC", "GENED", "GENEE", "GENEF"]
    a = ad.AnnData(X=np.ones((5, len(names)), dtype=np.float32))
    a.var_names = names
    a.obs["perturbation"] = pd.Categorical(
        ["GENEA", "GENEF+ctrl", "non-targeting", "GENEA+GENEB", "GENEA"]
    )
    path = tmp_path / "in.h5ad"
    a.write_h5ad(path)
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prior_command_writes_output_and_report(app, h5ad, string_files, tmp_path):
    links, _ = string_files
    out = tmp_path / "sub" / "out.h5ad"
    before = _digest(h5ad)
    res = CliRunner().invoke(
        app,
        [
            "prior",
            str(h5ad),
            "--string",
            str(links),
            "--perturbation-key",
            "perturbation",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "edges kept           : 3" in res.output
    assert "GENEF" in res.output  # perturbed without edges
    assert _digest(h5ad) == before
    back = ad.read_h5ad(out)
    mat = back.varp["pertspectra_prior"]
    assert mat.nnz == 6
    assert back.uns["pertspectra_prior"]["n_perturbed"] == 3
    assert list(back.uns["pertspectra_prior"]["perturbed_without_edges"]) == ["GENEF"]
    assert not any(p.name.startswith(".out.h5ad") for p in out.parent.iterdir())  # no temp left


def test_prior_command_channels_binary(app, h5ad, string_files, tmp_path):
    links, _ = string_files
    out = tmp_path / "o.h5ad"
    res = CliRunner().invoke(
        app,
        [
            "prior",
            str(h5ad),
            "--string",
            str(links),
            "--channels",
            "experiments,database",
            "--min-score",
            "0.4",
            "--binary",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    back = ad.read_h5ad(out)
    assert set(back.varp["pertspectra_prior"].data) == {1.0}
    assert list(back.uns["pertspectra_prior"]["channels"]) == ["experiments", "database"]


def test_prior_command_refuses_to_overwrite_input(app, h5ad, string_files):
    links, _ = string_files
    before = _digest(h5ad)
    res = CliRunner().invoke(app, ["prior", str(h5ad), "--string", str(links), "--out", str(h5ad)])
    assert res.exit_code != 0
    assert "input" in res.output
    assert _digest(h5ad) == before
    # the same file through another spelling of the path
    other = h5ad.parent / "." / h5ad.name
    res = CliRunner().invoke(app, ["prior", str(h5ad), "--string", str(links), "--out", str(other)])
    assert res.exit_code != 0
    assert _digest(h5ad) == before


def test_prior_command_user_errors(app, h5ad, string_files, tmp_path):
    links, _ = string_files
    out = tmp_path / "o.h5ad"
    runner = CliRunner()
    res = runner.invoke(
        app, ["prior", str(h5ad), "--string", str(links), "--min-score", "700", "--out", str(out)]
    )
    assert res.exit_code != 0
    assert "min_score 700.0 must be in [0, 1]" in res.output
    res = runner.invoke(
        app,
        [
            "prior",
            str(h5ad),
            "--string",
            str(links),
            "--perturbation-key",
            "nope",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code != 0
    res = runner.invoke(
        app,
        ["prior", str(h5ad), "--string", str(links), "--channels", "telepathy", "--out", str(out)],
    )
    assert res.exit_code == 1
    assert "telepathy" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(
        app, ["prior", str(tmp_path / "missing.h5ad"), "--string", str(links), "--out", str(out)]
    )
    assert res.exit_code == 1
    assert "missing.h5ad not found" in res.output
    # a table that is not a STRING file or an edge list: one line, no traceback
    junk = tmp_path / "junk.tsv"
    junk.write_text("alpha\tbeta\tgamma\n1\t2\t3\n")
    res = runner.invoke(app, ["prior", str(h5ad), "--string", str(junk), "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert res.output.startswith("error: ")
    assert len(res.output.strip().splitlines()) == 1
    assert "Traceback" not in res.output
    assert not out.exists()


def test_cli_and_library_share_the_min_score_default(app, h5ad, string_files, tmp_path):
    import pertspectra as ps

    links, _ = string_files
    out = tmp_path / "o.h5ad"
    res = CliRunner().invoke(app, ["prior", str(h5ad), "--string", str(links), "--out", str(out)])
    assert res.exit_code == 0, res.output
    adata = ad.read_h5ad(h5ad)
    ps.priors.add_prior(adata, links)
    cli = ad.read_h5ad(out)
    np.testing.assert_array_equal(
        cli.varp["pertspectra_prior"].toarray(), adata.varp["pertspectra_prior"].toarray()
    )
    assert cli.uns["pertspectra_prior"]["min_score"] == ps.priors.DEFAULT_MIN_SCORE == 0.7
    # the perturbation targets come from the library's own reading of the labels
    report = ps.priors.add_prior(adata, links, perturbation_key="perturbation")
    assert report.n_perturbed == 3
    res = CliRunner().invoke(app, ["prior", str(h5ad), "--string", str(links), "--out", str(out)])
    assert res.exit_code == 1
    assert "--overwrite" in res.output
