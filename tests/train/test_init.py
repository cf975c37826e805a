"""``TrainConfig.init``: where a fit starts (random, at the labels' means, or the prior's communities)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import pertspectra as ps
from pertspectra.design import build_design
from pertspectra.train import TrainConfig
from pertspectra.train._init import means_init, resolve_init

QUICK = {"cycle_epochs": 40, "max_epochs": 120, "threads": 1, "progress": False, "store": False}


@pytest.mark.parametrize(
    ("parametrization", "prior", "factors", "expected"),
    [
        ("effects", False, 11, "means"),
        ("effects", False, 12, "means"),
        # a prior's arrangement: its communities
        ("effects", True, 11, "communities"),
        ("effects", False, 10, "random"),  # fewer factors than labels
        ("paper", False, 11, "random"),  # the authors' model starts as theirs
        ("paper", True, 11, "communities"),
    ],
)
def test_auto_picks_means_only_where_it_starts_at_the_optimum(
    parametrization, prior, factors, expected
):
    kw = {"parametrization": parametrization, "has_prior": prior, "n_factors": factors}
    assert resolve_init("auto", n_labels=11, **kw) == expected
    assert resolve_init("random", n_labels=11, **kw) == "random"


@pytest.mark.parametrize(
    ("parametrization", "factors", "match"),
    [("paper", 20, "paper parametrization"), ("effects", 10, "10 factors for 11 labels")],
)
def test_means_is_refused_where_it_cannot_be_built(parametrization, factors, match):
    with pytest.raises(ValueError, match=match):
        resolve_init(
            "means", parametrization=parametrization, has_prior=False, n_factors=factors,
            n_labels=11,
        )  # fmt: skip


def test_config_refuses_an_unknown_start_and_old_settings_started_at_random():
    with pytest.raises(
        ValueError, match="init must be 'auto' or 'random' or 'means' or 'communities'"
    ):
        TrainConfig(init="nmf")  # type: ignore[arg-type]
    assert TrainConfig().init == "auto"
    assert TrainConfig.from_dict({"schedule": "cosine"}).init == "random"


def _module_at_means(labels, mu, n_factors, seed=0):
    from pertspectra.model._module import PertSpectraModule

    design = build_design(labels)
    h = torch.as_tensor(design.matrix(labels), dtype=torch.float64)
    weight = torch.linspace(1.0, 3.0, len(labels), dtype=torch.float64)
    s = torch.as_tensor(mu, dtype=torch.float64) * weight[:, None]
    config = ps.model.ModelConfig(n_factors=n_factors)  # effects + on-target by default
    module = PertSpectraModule(
        len(design.columns), mu.shape[1], config, generator=torch.Generator().manual_seed(seed),
        dtype=torch.float64,
    )  # fmt: skip
    means_init(module, h, weighted_sum=s, weight=weight)
    return module, design


def test_a_means_start_reproduces_every_label_mean():
    rng = np.random.default_rng(0)
    labels = ["ctrl", "A", "B", "C"]
    mu = rng.uniform(0.2, 3.0, size=(4, 9))
    module, design = _module_at_means(labels, mu, n_factors=6)
    with torch.no_grad():
        got = module.mean(torch.as_tensor(design.matrix(labels), dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, mu, rtol=1e-7)
    # the spare factors hold next to nothing, and B starts near zero
    with torch.no_grad():
        assert float(module.W[4:].sum(0).max()) < 1e-4
        assert float(module.B.max()) < 1e-2


def test_an_unseen_double_starts_at_the_additive_prediction():
    labels = ["ctrl", "A", "B"]
    mu = np.array([[1.0, 2.0, 1.5], [0.4, 2.5, 1.5], [1.2, 1.0, 2.0]])
    module, _ = _module_at_means(labels, mu, n_factors=3)
    design = build_design([*labels, "A+B"])
    h = torch.as_tensor(design.matrix(["A+B"]), dtype=torch.float64)
    with torch.no_grad():
        got = module.mean(h).numpy()[0]
    np.testing.assert_allclose(got, mu[1] + mu[2] - mu[0], rtol=1e-7)  # 0.6, 1.5, 2.0


def test_spare_factors_keep_the_seed():
    labels = ["ctrl", "A", "B"]
    mu = np.ones((3, 5))
    a, _ = _module_at_means(labels, mu, n_factors=5, seed=0)
    b, _ = _module_at_means(labels, mu, n_factors=5, seed=1)
    # the labels' factors hold the data's shares (up to the spare ones' 1e-6), the spare
    # factors the seed's draw
    assert torch.allclose(a.W[:3], b.W[:3], rtol=0, atol=1e-5)
    assert not torch.allclose(a.w_free[3:], b.w_free[3:])


def test_fit_starts_at_the_means_without_a_prior():
    singles = ps.stats.compute_group_stats(
        ps.datasets.toy(n_double=0, seed=0), perturbation_key="perturbation", progress=False
    )
    kw = {**QUICK, "n_factors": 7, "seed": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        auto = ps.train.fit(singles, **kw)
        rand = ps.train.fit(singles, init="random", **kw)
    assert auto.training["init"] == "auto"
    assert auto.training["start"] == "means"
    assert rand.training["start"] == "random"
    assert "from the labels' means" in auto.summary()
    assert "from the labels' means" not in rand.summary()
    dev = auto.training["convergence"]["deviance"]
    span = dev["null_recon"] - dev["saturated_recon"]
    # the first epoch is evaluated at the start: the saturated fit's reconstruction, where
    # a random start is far from it
    first = auto.training["recon_history"][0]
    assert abs(first - dev["saturated_recon"]) < 0.05 * span
    assert abs(rand.training["recon_history"][0] - dev["saturated_recon"]) > 0.5 * span
    assert auto.training["deviance_explained"] > 0.99


def test_fit_with_a_prior_starts_from_its_communities_unless_asked(toy_stats):
    genes = list(toy_stats.var_names)
    stats = toy_stats.copy()
    edges = pd.DataFrame(
        {"source": genes[0:20:2], "target": genes[1:20:2], "weight": np.full(10, 0.9)}
    )
    ps.priors.add_prior(stats, edges)
    kw = {**QUICK, "n_factors": 11, "seed": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        auto = ps.train.fit(stats, **kw)
        rand = ps.train.fit(stats, init="random", **kw)
        assert ps.train.fit(stats, init="means", **kw).training["start"] == "means"
    assert auto.training["start"] == "communities"
    assert "from the prior's communities" in auto.summary()
    assert rand.training["start"] == "random"
    assert "communities" not in rand.summary()


def test_fit_refuses_means_with_too_few_factors(toy_stats):
    with pytest.raises(ValueError, match="3 factors for 11 labels"):
        ps.train.fit(toy_stats, init="means", n_factors=3, **QUICK)
