"""``pertspectra similarity`` on a saved model and its data."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from pertspectra.cli import app

runner = CliRunner()


def test_similarity_writes_square_table_clusters_and_benchmark(toy_model, toy_adata, tmp_path):
    toy_model.save(tmp_path / "model")
    data = tmp_path / "toy.h5ad"
    toy_adata.write_h5ad(data)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("entity1,entity2\nG0,G1\nG1,G0\nG2,G3\nG4,G4\n")
    gmt = tmp_path / "go.gmt"
    gmt.write_text("term A\tx\tG0\tG1\tG9\tG8\tG7\nterm B\tx\tG2\tG3\tG4\tG5\tG6\n")
    args = [
        "similarity", str(tmp_path / "model"), "--data", str(data), "--perturbation-key",
        "perturbation", "--pairs", str(pairs), "--gene-sets", str(gmt), "--permutations", "50",
        "--authors-scoring", "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    sim = pd.read_csv(tmp_path / "out" / "similarity.csv", index_col=0)
    singles = [lab for lab in toy_model.labels if "+" not in lab and lab != "ctrl"]
    assert list(sim.index) == singles
    assert list(sim.columns) == singles
    assert (sim.to_numpy().diagonal() == 1).all()
    clusters = pd.read_csv(tmp_path / "out" / "clusters.csv")
    assert list(clusters.columns) == ["label", "cluster", "top_terms"]
    bench = pd.read_csv(tmp_path / "out" / "benchmark.csv")
    assert list(bench.columns) == [
        "pairs_file", "embedding", "metric", "score", "value", "prevalence", "n_positive", "p_value"
    ]  # fmt: skip
    ours = bench[(bench["metric"] == "correlation") & (bench["score"] == "average_precision")]
    assert set(ours["embedding"]) == {
        "P",
        "program_change",
        "gene_change",
        "data_change",
        "data_pca",
    }
    assert set(ours["n_positive"]) == {2}  # G0-G1 once, G2-G3; the self-pair dropped
    assert "auprc_trapezoid" in set(bench["score"])
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "--overwrite" in again.output
    bad = runner.invoke(
        app,
        [
            "similarity",
            str(tmp_path / "model"),
            "--embedding",
            "data_change",
            "--out",
            str(tmp_path / "o2"),
        ],
    )
    assert bad.exit_code == 1
    assert "needs --data" in bad.output
