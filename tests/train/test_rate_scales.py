"""``TrainConfig.w_rate_scale``: W's learning rate as a multiple of the schedule's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import pertspectra as ps
from pertspectra.train import TrainConfig, _optim
from pertspectra.train._loop import run
from pertspectra.train._options import rate_scales


def _two_quadratics():
    x = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    y = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))

    def loss():
        return ((x - 5.0) ** 2).sum() + ((y - 5.0) ** 2).sum() + 1.0

    return x, y, loss


@pytest.mark.parametrize("scale", [0.25, 3.0])
def test_each_parameter_steps_at_its_scaled_rate(scale):
    # Adam's first step moves every coordinate by the learning rate (sign of the gradient)
    from pertspectra._utils import progress_bar
    from pertspectra.train._history import History
    from pertspectra.train._loop import _Stepper

    x, y, loss = _two_quadratics()
    opt = _optim.adamw([x, y], lr=1.0, weight_decay=0.0, rate_scales=[1.0, scale])
    hist = History()
    stepper = _Stepper(
        [x, y], loss, opt, hist, progress_bar(1, desc="fit", unit="epochs", enabled=False)
    )
    stepper.step(0.5)
    assert hist.lr == [0.5]  # the history keeps the schedule's rate
    assert x.detach().numpy() == pytest.approx(np.full(3, 0.5), rel=1e-6)
    assert y.detach().numpy() == pytest.approx(np.full(3, scale * 0.5), rel=1e-6)
    stepper.step(0.1)  # every step sets each group's rate from the schedule's again
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, scale * 0.1])


def test_scaled_rate_holds_in_the_check_cycles_of_the_stepped_schedule():
    x, y, loss = _two_quadratics()
    cfg = TrainConfig(schedule="stepped", max_epochs=60, patience=5, tol=0.5).resolved("paper")
    steps: list[tuple[float, ...]] = []
    original = _optim.adamw

    def recording(params, **kw):
        steps.append(tuple(kw.get("rate_scales") or ()))
        return original(params, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("pertspectra.train._loop.adamw", recording)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run([x, y], loss, cfg, weight_decay=0.0, progress=False, rate_scales=[1.0, 0.5])
    assert steps == [(1.0, 0.5), (1.0, 0.5)]  # the schedule's optimizer and the check's


def test_one_group_unless_a_scale_differs_from_one():
    x, y, _ = _two_quadratics()
    assert len(_optim.adamw([x, y], lr=0.1).param_groups) == 1
    assert len(_optim.adamw([x, y], lr=0.1, rate_scales=[1.0, 1.0]).param_groups) == 1
    groups = _optim.adamw([x, y], lr=0.1, rate_scales=[1.0, 0.3]).param_groups
    assert [g["rate_scale"] for g in groups] == [1.0, 0.3]
    assert [g["params"][0] is p for g, p in zip(groups, (x, y), strict=True)] == [True, True]
    for short in ([0.3], [1.0]):  # refused whether or not a scale differs from 1
        with pytest.raises(ValueError, match="rate_scales has 1 entries for 2 parameters"):
            _optim.adamw([x, y], lr=0.1, rate_scales=short)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_config_refuses_a_scale_that_is_not_positive_and_finite(bad):
    with pytest.raises(ValueError, match="w_rate_scale must be a positive finite number"):
        TrainConfig(w_rate_scale=bad)


def test_only_the_programs_are_scaled():
    from pertspectra.model._module import PertSpectraModule

    gen = torch.Generator().manual_seed(0)
    module = PertSpectraModule(4, 6, ps.model.ModelConfig(n_factors=3), generator=gen)
    scales = dict(
        zip(
            [n for n, _ in module.named_parameters()],
            rate_scales(module, TrainConfig(w_rate_scale=0.3)),
            strict=True,
        )
    )
    assert {n for n, s in scales.items() if s != 1.0} == {"w_free"}
    assert scales["w_free"] == 0.3


def test_condition_models_scale_the_shared_and_own_programs():
    from pertspectra.model._condition_module import ConditionModule

    module = ConditionModule(
        4, 6, ps.model.ModelConfig(n_factors=3), condition_share=[0.5, 0.5],
        condition_factors=2, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    names = [n for n, _ in module.named_parameters()]
    scales = rate_scales(module, TrainConfig(w_rate_scale=2.0))
    assert {n for n, s in zip(names, scales, strict=True) if s == 2.0} == {"w_free", "w_own_free"}


def test_fit_records_the_scale_and_it_changes_the_path(toy_stats):
    kw = {"n_factors": 3, "cycle_epochs": 40, "max_epochs": 60, "threads": 1}
    kw |= {"progress": False, "store": False, "seed": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        default = ps.train.fit(toy_stats, **kw)
        scaled = ps.train.fit(toy_stats, w_rate_scale=0.3, **kw)
        same = ps.train.fit(toy_stats, w_rate_scale=1.0, **kw)
    assert default.training["w_rate_scale"] == 1.0
    assert scaled.training["w_rate_scale"] == 0.3
    assert np.array_equal(default.W, same.W)  # 1 is the default path, bit for bit
    assert not np.allclose(default.W, scaled.W)
