"""The numpy prediction formula equals the torch module's mean, for both parametrizations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pertspectra as ps
from pertspectra.model import ModelConfig, PertSpectraModule


@pytest.mark.parametrize("parametrization", ["paper", "effects"])
@pytest.mark.parametrize("device", ps.testing.devices())
def test_expected_expression_equals_module_mean(parametrization, device):
    config = ModelConfig(n_factors=5, parametrization=parametrization, floor=0.05)
    gen = torch.Generator().manual_seed(0)
    module = PertSpectraModule(7, 30, config, generator=gen, dtype=torch.float64).to(device)
    with torch.no_grad():
        module.p_free.normal_(generator=None)  # signed rows: the clamp is exercised
        module.gene_scale_free.uniform_(-2, 2)
    rows = np.zeros((4, 7))
    rows[:, -1] = 1  # basal
    rows[0, -2] = 1  # control
    rows[1, 0] = 1
    rows[2, [0, 3]] = 1  # a combination
    rows[3, [1, 2, 4]] = 1
    with torch.no_grad():
        want = module.mean(torch.as_tensor(rows, device=device)).cpu().numpy()
        P, W = module.P.cpu().numpy(), module.W.cpu().numpy()
        nu = module.gene_scale.cpu().numpy()
    got = ps.predict.expected_expression(
        rows, P, W, gene_scale=nu, delta=config.delta, parametrization=parametrization,
        floor=config.floor,
    )  # fmt: skip
    ps.testing.assert_allclose(got, want, rtol=1e-12)
    if parametrization == "effects":
        assert (got >= (nu + config.delta) * config.floor - 1e-12).all()


def test_predict_and_change(toy_model):
    labels = ["G4+G1", "G2", "ctrl"]
    pred = ps.predict.predict(toy_model, labels)
    assert list(pred.index) == labels
    assert list(pred.columns) == toy_model.genes
    rows = toy_model.design.matrix(labels)
    want = ps.predict.expected_expression(
        rows,
        toy_model.P,
        toy_model.W,
        gene_scale=toy_model.gene_scale,
        delta=toy_model.config.delta,
        parametrization=toy_model.config.parametrization,
        floor=toy_model.config.floor,
        on_target=toy_model.on_target,
        on_target_gene=toy_model.on_target_gene_index,
    )
    np.testing.assert_allclose(pred.to_numpy(), want)
    change = ps.predict.predict_change(toy_model, labels)
    np.testing.assert_allclose(change.loc["ctrl"].to_numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(
        change.to_numpy(), pred.to_numpy() - pred.loc[["ctrl"]].to_numpy(), atol=1e-12
    )
    with pytest.raises(KeyError, match="NOPE"):
        ps.predict.predict(toy_model, ["NOPE"])
