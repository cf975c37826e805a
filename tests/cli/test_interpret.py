"""``pertspectra programs`` on a saved model."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from pertspectra.cli import app

runner = CliRunner()


def _gmt(path, model):
    genes = model.genes
    lines = [f"set{k}\tdesc\t" + "\t".join(genes[k * 10 : k * 10 + 12]) for k in range(5)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_programs_writes_the_tables_and_refuses_to_overwrite(toy_model, tmp_path):
    toy_model.save(tmp_path / "model")
    gmt = _gmt(tmp_path / "sets.gmt", toy_model)
    args = ["programs", str(tmp_path / "model"), "--gene-sets", str(gmt), "--min-size", "5"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "programs scored against 5 gene sets (ulm)" in res.output
    terms = pd.read_csv(tmp_path / "out" / "program_terms.csv")
    assert list(terms.columns) == ["program", "gene_set", "method", "score", "p", "fdr", "set_size"]
    assert len(terms) == 6 * 5
    moved = pd.read_csv(tmp_path / "out" / "perturbation_programs.csv")
    assert set(moved["label"]) == {
        lab for lab in toy_model.labels if "+" not in lab and lab != "ctrl"
    }
    again = runner.invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert again.exit_code == 1
    assert "--overwrite" in again.output
    bad = runner.invoke(app, [*args, "--out", str(tmp_path / "o2"), "--method", "magic"])
    assert bad.exit_code == 1
    assert "method must be one of" in bad.output
    missing = runner.invoke(
        app,
        [
            "programs",
            str(tmp_path / "model"),
            "--gene-sets",
            "nope.gmt",
            "--out",
            str(tmp_path / "o3"),
        ],
    )
    assert missing.exit_code == 1
    assert "gene-set file nope.gmt not found" in missing.output
