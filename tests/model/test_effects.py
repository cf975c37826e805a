"""The optional "effects" parametrization: signed perturbation rows, zero ctrl row, clamped mean."""

from __future__ import annotations

import numpy as np
import torch

import pertspectra as ps
from pertspectra.model import ModelConfig, PertSpectraModule, load_model


def test_effects_rows_and_clamp():
    cfg = ModelConfig(n_factors=3, parametrization="effects", floor=0.01)
    module = PertSpectraModule(
        4, 5, cfg, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    with torch.no_grad():
        module.p_free[0] = -50.0  # a strongly negative perturbation row
    P = module.P
    assert (P[-2] == 0).all()  # ctrl row fixed at zero
    assert (P[-1] > 0).all()  # basal positive
    assert (P[0] < 0).all()  # perturbation rows signed
    h = torch.tensor([[1.0, 0, 0, 1.0]], dtype=torch.float64)
    mu = module.mean(h)
    np.testing.assert_allclose(
        mu.detach().numpy(), ((module.gene_scale + cfg.delta) * 0.01).detach().numpy()[None]
    )


def test_effects_fit_predicts_additively_and_roundtrips(toy_stats, tmp_path):
    model = ps.train.fit(
        toy_stats,
        n_factors=4,
        parametrization="effects",
        graph=False,
        max_epochs=200,
        progress=False,
    )
    assert model.config.parametrization == "effects"
    assert model.training["learning_rates"] == [0.1, 0.0001]  # the effects cosine
    h_row = model.design.row("G0+G1")
    raw = (h_row @ model.P) @ model.W
    want = (model.gene_scale + model.config.delta) * np.maximum(raw, model.config.floor)
    np.testing.assert_allclose(model.predict(["G1+G0"]).iloc[0].to_numpy(), want)
    loaded = load_model(model.save(tmp_path / "m"))
    assert loaded.config.parametrization == "effects"
    np.testing.assert_array_equal(
        loaded.predict(["G0+G1"]).to_numpy(), model.predict(["G0+G1"]).to_numpy()
    )
