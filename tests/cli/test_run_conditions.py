"""``pertspectra run --condition-key``: every stage per condition, one report section each."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from typer.testing import CliRunner

import pertspectra as ps
from pertspectra.cli import app

runner = CliRunner()
CONDITIONS = ["A172", "T98G", "U87MG"]
SMALL = [
    "--n-factors", "6", "--condition-factors", "2", "--max-epochs", "150", "--folds", "2",
    "--threads", "1", "--permutations", "50", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def mc_h5ad(shared, tmp_path_factory):
    import anndata as ad

    full = ad.read_h5ad(shared("combinatorial/perturbench_devel.h5ad"))
    path = tmp_path_factory.mktemp("data") / "mcfaline23.h5ad"
    full[(full.obs["dataset"] == "mcfaline23").to_numpy()].copy().write_h5ad(path)
    return path


def _run(data, out, *extra):
    return runner.invoke(
        app,
        [
            "run", str(data), "--out", str(out), "--perturbation-key", "condition",
            "--condition-key", "cell_type", *SMALL, *extra,
        ],
    )  # fmt: skip


@pytest.mark.filterwarnings("ignore:the fit did not converge")
def test_run_with_conditions(mc_h5ad, tmp_path):
    out = tmp_path / "res"
    res = _run(mc_h5ad, out)
    assert res.exit_code == 0, res.output
    model = ps.model.ConditionModel.load(out / "model")
    assert model.conditions == CONDITIONS
    metrics = pd.read_csv(out / "evaluate" / "metrics.csv")
    assert sorted(metrics["condition"].unique()) == CONDITIONS
    assert {"pertspectra", "pertspectra_pooled", "pertspectra_separate"} <= set(metrics["method"])
    html = (out / "report.html").read_text(encoding="utf-8")
    assert sorted(set(re.findall(r'id="condition-([A-Za-z0-9]+)"', html))) == CONDITIONS
    # an unchanged rerun skips every stage; another number of own programs refits
    res = _run(mc_h5ad, out)
    assert res.exit_code == 0, res.output
    assert res.output.count("unchanged, skipped") == 3, res.output
    res = _run(mc_h5ad, out, "--condition-factors", "1", "--no-evaluate")
    assert res.exit_code == 0, res.output
    assert "[1/3] fit ..." in res.output, res.output
    assert ps.model.ConditionModel.load(out / "model").condition_factors == 1


def test_run_same_column_twice_is_one_error(mc_h5ad, tmp_path):
    res = runner.invoke(
        app,
        [
            "run", str(mc_h5ad), "--out", str(tmp_path / "r"), "--perturbation-key",
            "condition", "--condition-key", "condition", *SMALL,
        ],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert len([x for x in res.output.splitlines() if x.startswith("error:")]) == 1
