"""The real Datlinger screen (stimulated / unstimulated Jurkat cells) from the command line.

Slow (a default fit: 2,000 genes, 200 shared + 50 own programs per condition, about 140 s alone
on 2 cores). A knockout of a TCR-signalling gene undoes part of the stimulation: its predicted
change in stimulated cells must correlate with the reversal of stimulation,
``-(stimulated control - unstimulated control)`` of the observed means, as the observed
changes do (measured with
``benchmarks/conditions.py``: observed LCK 0.733, ZAP70 0.804, LAT 0.703, NFKB1 0.188;
predicted 0.709, 0.779, 0.657, 0.050).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import pertspectra as ps
from pertspectra.cli import app

runner = CliRunner()
DATLINGER = "screens/datlinger2017_jurkat_cropseq_2000genes_scperturbR.h5ad"


@pytest.mark.slow
def test_datlinger_end_to_end_from_the_cli(shared, tmp_path):
    data = shared(DATLINGER)
    model_dir, pred_file = tmp_path / "model", tmp_path / "pred.csv"
    res = runner.invoke(
        app,
        [
            "fit", str(data), "--perturbation-key", "perturbation", "--condition-key",
            "condition", "--normalize", "log1p", "--no-progress", "--out", str(model_dir),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["info", str(model_dir)])
    assert res.exit_code == 0, res.output
    assert "stimulated" in res.output
    assert "unstimulated" in res.output
    tcr = ["LCK", "ZAP70", "LAT", "NFKB1"]
    res = runner.invoke(app, ["predict", str(model_dir), "ctrl", *tcr, "--out", str(pred_file)])
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(pred_file).set_index(["condition", "label"])
    model = ps.model.ConditionModel.load(model_dir)
    assert model.training["converged"]
    stats = ps.stats.compute_group_stats(
        ad.read_h5ad(data), perturbation_key="perturbation", condition_key="condition",
        normalize="log1p", progress=False,
    )  # fmt: skip
    observed = pd.DataFrame(stats.X, index=stats.obs_names, columns=stats.var_names)
    reversal = -(observed.loc["stimulated:ctrl"] - observed.loc["unstimulated:ctrl"])
    stim = pred.loc["stimulated"]
    corr = {g: np.corrcoef(stim.loc[g] - stim.loc["ctrl"], reversal)[0, 1] for g in tcr}
    for g in ("LCK", "ZAP70", "LAT"):
        assert corr[g] > 0.5, corr
    assert corr["NFKB1"] < min(corr["LCK"], corr["ZAP70"], corr["LAT"]) - 0.3, corr
