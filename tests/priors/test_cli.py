"""The ``pertspectra prior`` command function, on a tiny typer app."""

from __future__ import annotations

import hashlib

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from pertspectra._keys import KEYS
from pertspectra.priors._cli import prior_command


@pytest.fixture
def app():
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    app.command("prior")(prior_command)
    return app


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
    mat = back.varp[KEYS.prior]
    assert mat.nnz == 6
    assert back.uns[KEYS.prior_info]["n_perturbed"] == 3
    assert list(back.uns[KEYS.prior_info]["perturbed_without_edges"]) == ["GENEF"]
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
    assert set(back.varp[KEYS.prior].data) == {1.0}
    assert list(back.uns[KEYS.prior_info]["channels"]) == ["experiments", "database"]


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
    assert "--min-score" in res.output
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
    assert isinstance(res.exception, ValueError)
    res = runner.invoke(
        app, ["prior", str(tmp_path / "missing.h5ad"), "--string", str(links), "--out", str(out)]
    )
    assert isinstance(res.exception, FileNotFoundError)
    assert not out.exists()
