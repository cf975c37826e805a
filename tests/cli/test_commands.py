from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pertspectra.cli import app
from pertspectra.model import load_model

runner = CliRunner()


@pytest.fixture(scope="module")
def toy_h5ad(tmp_path_factory, toy_adata):
    path = tmp_path_factory.mktemp("data") / "toy.h5ad"
    toy_adata.write_h5ad(path)
    return path


def _fit(path, out, *extra):
    return runner.invoke(
        app,
        [
            "fit",
            str(path),
            "--perturbation-key",
            "perturbation",
            "--factors",
            "4",
            "--epochs",
            "40",
            "--no-progress",
            "--out",
            str(out),
            *extra,
        ],
    )


def test_fit_predict_info(toy_h5ad, tmp_path):
    res = _fit(toy_h5ad, tmp_path / "model")
    assert res.exit_code == 0, res.output
    assert "model written to" in res.output
    model = load_model(tmp_path / "model")
    res = runner.invoke(
        app, ["predict", str(tmp_path / "model"), "G0+G3", "G2", "--out", str(tmp_path / "p.csv")]
    )
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(tmp_path / "p.csv", index_col=0)
    assert list(pred.index) == ["G0+G3", "G2"]
    assert list(pred.columns) == model.genes
    np.testing.assert_allclose(
        pred.to_numpy(), model.predict(["G0+G3", "G2"]).to_numpy(), rtol=1e-12
    )
    res = runner.invoke(app, ["info", str(tmp_path / "model")])
    assert res.exit_code == 0
    assert "4 factors" in res.output


def test_user_errors_are_one_line(toy_h5ad, tmp_path):
    res = _fit(toy_h5ad, tmp_path / "m", "--perturbation-key", "nope")
    assert res.exit_code == 1
    assert "obs column 'nope' not found" in res.output
    assert "Traceback" not in res.output
    res = _fit(tmp_path / "missing.h5ad", tmp_path / "m")
    assert res.exit_code == 1
    assert "not found" in res.output
    assert _fit(toy_h5ad, tmp_path / "m").exit_code == 0
    res = runner.invoke(
        app, ["predict", str(tmp_path / "m"), "G0+UNKNOWN", "--out", str(tmp_path / "p.csv")]
    )
    assert res.exit_code == 1
    assert "UNKNOWN" in res.output
    assert not (tmp_path / "p.csv").exists()
    res = _fit(toy_h5ad, tmp_path / "m")
    assert res.exit_code == 1
    assert "--overwrite" in res.output
    res = runner.invoke(app, ["info", str(tmp_path)])
    assert res.exit_code == 1
    assert "not a pertspectra model" in res.output


def test_counts_need_normalize(tmp_path, toy_adata):
    counts = toy_adata.copy()
    counts.X = counts.layers["counts"]
    path = tmp_path / "counts.h5ad"
    counts.write_h5ad(path)
    res = _fit(path, tmp_path / "m")
    assert res.exit_code == 1
    assert "--normalize log1p" in res.output
    res = _fit(path, tmp_path / "m", "--normalize", "log1p")
    assert res.exit_code == 0, res.output


def test_dry_run(toy_h5ad, tmp_path):
    res = _fit(toy_h5ad, tmp_path / "m", "--dry-run")
    assert res.exit_code == 0, res.output
    assert "per epoch" in res.output.lower()
    assert not (tmp_path / "m").exists()


def test_papalexi_end_to_end(shared_data_dir, tmp_path):
    path = shared_data_dir / "screens" / "papalexi2021_thp1_eccite_299genes.h5ad"
    res = runner.invoke(
        app,
        [
            "fit",
            str(path),
            "--perturbation-key",
            "target",
            "--normalize",
            "log1p",
            "--factors",
            "10",
            "--epochs",
            "60",
            "--no-progress",
            "--out",
            str(tmp_path / "papalexi"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "dropped 1 label(s) below 50 cells: SPI1" in res.output
    model = load_model(tmp_path / "papalexi")
    assert len(model.genes) == 299
    assert "ctrl" in model.labels
    assert "IFNGR2" in model.labels
    res = runner.invoke(
        app, ["predict", str(tmp_path / "papalexi"), "JAK2+STAT1", "--out", str(tmp_path / "p.csv")]
    )
    assert res.exit_code == 0, res.output


def test_effects_option_and_bad_choice(toy_h5ad, tmp_path):
    res = _fit(
        toy_h5ad, tmp_path / "e", "--parametrization", "effects", "--no-graph", "--threads", "1"
    )
    assert res.exit_code == 0, res.output
    assert "effects parametrization" in runner.invoke(app, ["info", str(tmp_path / "e")]).output
    res = _fit(toy_h5ad, tmp_path / "x", "--parametrization", "nonsense")
    assert res.exit_code == 1
    assert "parametrization must be" in res.output
