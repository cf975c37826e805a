"""``pertspectra programs`` and ``similarity`` on a condition model folder (mcfaline23, 3 lines)."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import pandas as pd
import pytest
from typer.testing import CliRunner

import pertspectra as ps
from pertspectra.cli import app

runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore:the fit did not converge")
CONDITIONS = ["A172", "T98G", "U87MG"]


@pytest.fixture(scope="module")
def folder(shared, tmp_path_factory) -> dict[str, Path]:
    """A condition model folder, its screen, GO BP gene sets and a small pairs file."""
    tmp = tmp_path_factory.mktemp("conditions")
    adata = ad.read_h5ad(shared("combinatorial/perturbench_devel.h5ad"))
    adata = adata[adata.obs["dataset"] == "mcfaline23"].copy()
    adata.write_h5ad(tmp / "mcfaline.h5ad")
    model = ps.train.fit_conditions(
        adata, perturbation_key="condition", condition_key="cell_type", n_factors=6,
        condition_factors=2, max_epochs=40, progress=False, seed=0,
    )  # fmt: skip
    model.save(tmp / "model")
    (tmp / "pairs.csv").write_text(
        "entity1,entity2\nMAP2K3,MAP2K6\nMAP2K6,MAP2K3\nMAP4K3,MAP4K5\nMAPK1,MAP2K3\n"
    )
    return {
        "tmp": tmp,
        "model": tmp / "model",
        "data": tmp / "mcfaline.h5ad",
        "gmt": shared("knowledge/go_bp_human_2022-07.gmt.gz"),
        "pairs": tmp / "pairs.csv",
    }


def _one_error(res) -> str:
    assert res.exit_code == 1, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.output
    assert "Traceback" not in res.output
    return errors[0]


def test_programs_on_a_condition_model(folder, tmp_path):
    out = tmp_path / "programs"
    res = runner.invoke(
        app,
        ["programs", str(folder["model"]), "--gene-sets", str(folder["gmt"]), "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    assert "12 programs (6 shared by the 3 conditions, 6 conditions' own)" in res.output
    genes = pd.read_csv(out / "programs.csv")
    assert list(genes.columns[:3]) == ["condition", "block", "program"]
    blocks = genes.drop_duplicates("program").set_index("program")
    assert set(blocks.loc[[f"shared_{k}" for k in range(6)], "condition"]) == {"all"}
    for c in CONDITIONS:
        assert blocks.loc[f"{c}_0", "block"] == "own"
        assert blocks.loc[f"{c}_1", "condition"] == c
    perts = pd.read_csv(out / "perturbation_programs.csv")
    labels = perts.groupby("condition")["label"].unique()
    assert "PLK4" not in set(labels["A172"])
    assert "PLK4" in set(labels["T98G"])
    assert perts.groupby(["condition", "label"]).size().eq(8).all()  # 6 shared + 2 own
    settings = json.loads((out / "settings.json").read_text())
    assert settings["conditions"] == CONDITIONS
    assert settings["condition_key"] == "cell_type"
    assert "inputs" in settings


def test_similarity_on_a_condition_model(folder, tmp_path):
    out = tmp_path / "similarity"
    args = [
        "similarity", str(folder["model"]), "--data", str(folder["data"]),
        "--perturbation-key", "condition", "--pairs", str(folder["pairs"]),
        "--gene-sets", str(folder["gmt"]), "--permutations", "20", "--out", str(out),
    ]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    for c in CONDITIONS:
        assert f"{c}: " in res.output
    assert "across conditions" in res.output
    sim = pd.read_csv(out / "similarity.csv", index_col=[0, 1])
    assert sim.index.names == ["condition", "label"]
    assert list(sim.index.get_level_values(0).unique()) == CONDITIONS
    a172 = sim.loc["A172"].dropna(axis=1, how="all")
    assert "PLK4" not in a172.index
    assert "PLK4" not in a172.columns
    assert sorted(a172.index) == sorted(a172.columns)
    assert "PLK4" in sim.loc["T98G"].index
    clusters = pd.read_csv(out / "clusters.csv")
    assert list(clusters.columns) == ["condition", "label", "cluster", "top_terms"]
    bench = pd.read_csv(out / "benchmark.csv")
    assert list(bench.columns[:2]) == ["condition", "pairs_file"]
    assert set(bench["condition"]) == set(CONDITIONS)
    assert {"data_change", "gene_change", "P"} <= set(bench["embedding"])
    assert set(pd.read_csv(out / "pr_curves.csv")["condition"]) == set(CONDITIONS)
    agreement = pd.read_csv(out / "condition_agreement.csv")
    pairs = set(
        zip(agreement["label"], agreement["condition1"], agreement["condition2"], strict=True)
    )
    assert ("PLK4", "T98G", "U87MG") in pairs
    assert not any(lab == "PLK4" and "A172" in (a, b) for lab, a, b in pairs)
    settings = json.loads((out / "settings.json").read_text())
    assert set(settings["n_clusters"]) == set(CONDITIONS)


def test_plain_model_folders_still_work(toy_model, tmp_path):
    toy_model.save(tmp_path / "model")
    res = runner.invoke(app, ["similarity", str(tmp_path / "model"), "--out", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "s" / "condition_agreement.csv").exists()
    sim = pd.read_csv(tmp_path / "s" / "similarity.csv", index_col=0)
    assert sim.index.name == "label"
    err = _one_error(
        runner.invoke(
            app,
            [
                "similarity",
                str(tmp_path / "model"),
                "--condition-key",
                "cell_type",
                "--out",
                str(tmp_path / "s2"),
            ],
        )
    )
    assert "several conditions" in err


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--pseudobulk"], "needs the cells"),
        (["--condition-key", "nope"], "nope"),
        (["--embedding", "data_pca"], "needs --data"),
    ],
)
def test_similarity_bad_input_is_one_error_line(folder, tmp_path, extra, match):
    args = ["similarity", str(folder["model"]), "--out", str(tmp_path / "o"), *extra]
    if extra[0] != "--embedding":
        args += ["--data", str(folder["data"]), "--perturbation-key", "condition"]
    assert match in _one_error(runner.invoke(app, args))


def test_similarity_condition_key_without_data_is_one_error_line(folder, tmp_path):
    """--condition-key names a column of --data: without --data it is refused, not ignored."""
    out = tmp_path / "o"
    for key in ("nope", "cell_type"):
        args = ["similarity", str(folder["model"]), "--condition-key", key, "--out", str(out)]
        err = _one_error(runner.invoke(app, args))
        assert "--condition-key" in err
        assert "--data" in err
        assert not out.exists()


def test_programs_bad_input_is_one_error_line(folder, tmp_path):
    gmt = tmp_path / "other.gmt"
    gmt.write_text("set\tx\t" + "\t".join(f"NOTAGENE{i}" for i in range(20)) + "\n")
    err = _one_error(
        runner.invoke(
            app,
            [
                "programs",
                str(folder["model"]),
                "--gene-sets",
                str(gmt),
                "--out",
                str(tmp_path / "p"),
            ],
        )
    )
    assert "gene" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text(json.dumps({"conditions": {"names": ["x"]}, "genes": []}))
    err = _one_error(
        runner.invoke(
            app,
            [
                "programs",
                str(broken),
                "--gene-sets",
                str(folder["gmt"]),
                "--out",
                str(tmp_path / "q"),
            ],
        )
    )
    assert "broken" in err
