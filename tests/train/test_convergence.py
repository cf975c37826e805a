"""Converged means converged: the cosine schedule's check cycles, and the stepped schedule's check."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

import pertspectra as ps
from pertspectra.train import TrainConfig
from pertspectra.train._loop import cosine_rate, run


def _quadratic(target: float):
    x = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def loss():
        return ((x - target) ** 2).sum() + 1.0  # minimum 1: relative changes are well defined

    return x, loss


def test_cosine_rate_runs_from_first_to_last():
    assert cosine_rate(0, 100, 1.0, 1e-4) == pytest.approx(1.0)
    assert cosine_rate(99, 100, 1.0, 1e-4) == pytest.approx(1e-4)
    rates = [cosine_rate(e, 100, 1.0, 1e-4) for e in range(100)]
    assert all(a >= b for a, b in itertools.pairwise(rates))


def test_converged_on_a_problem_the_schedule_solves():
    x, loss = _quadratic(3.0)
    cfg = TrainConfig(cycle_epochs=400).resolved("paper")
    hist = run([x], loss, cfg, weight_decay=0.0, progress=False)
    assert hist.converged
    assert hist.stop_reason.startswith("converged")
    assert float(x.detach()) == pytest.approx(3.0, abs=1e-3)
    assert hist.epochs == 400 + 100  # one cycle and one check cycle (a quarter)
    check = hist.checks[-1]
    assert check["improvement"] < cfg.converged_tol
    assert check["epochs"] == 100


def test_not_converged_when_the_budget_ends_far_from_the_optimum():
    # Adam moves about lr per epoch: 40 + 10 epochs at lr <= 1 cannot reach 1000
    x, loss = _quadratic(1000.0)
    cfg = TrainConfig(cycle_epochs=40, max_epochs=200).resolved("paper")
    hist = run([x], loss, cfg, weight_decay=0.0, progress=False)
    assert not hist.converged
    assert hist.epochs == 200
    assert hist.stop_reason.startswith("reached max_epochs=200")
    assert all(c["improvement"] > cfg.converged_tol for c in hist.checks)
    # each check cycle after a failed one is twice as long (the last one cut at max_epochs)
    assert [c["epochs"] for c in hist.checks] == [50, 100, 10]
    assert (
        f"the last full check cycle still improved the objective by {hist.checks[1]['improvement']:.2e}"
        in hist.stop_reason
    )
    # the parameters returned are the best seen at the end of a cycle
    assert hist.checks[-1]["after"] == pytest.approx(float(loss().detach()))


def test_check_cycle_restarts_at_the_check_rate():
    x, loss = _quadratic(3.0)
    cfg = TrainConfig(cycle_epochs=400).resolved("paper")
    hist = run([x], loss, cfg, weight_decay=0.0, progress=False)
    first = hist.checks[0]["first_epoch"]  # 1-based
    assert hist.lr[first - 2] == pytest.approx(cfg.learning_rates[-1])
    assert hist.lr[first - 1] == pytest.approx(0.1)  # CHECK_RATE, below the first rate 1
    assert "learning rate 0.1," in hist.convergence(cfg.converged_tol)["criterion"]
    low = TrainConfig(cycle_epochs=400, learning_rates=(0.05, 1e-4)).resolved("effects")
    hist = run([x], loss, low, weight_decay=0.0, progress=False)
    assert hist.lr[hist.checks[0]["first_epoch"] - 1] == pytest.approx(0.05)  # never above


def test_stepped_plateau_too_early_is_reported_and_result_unchanged():
    # a huge tol makes the relative rule step down every `patience` epochs: it stops early
    x, loss = _quadratic(1000.0)
    cfg = TrainConfig(schedule="stepped", learning_rates=(1.0, 0.5), tol=10.0, patience=5).resolved(
        "paper"
    )
    hist = run([x], loss, cfg, weight_decay=0.0, progress=False)
    assert hist.epochs == len(hist.loss) == 11  # the check cycle's epochs are not recorded
    assert not hist.converged
    assert "not converged" in hist.stop_reason
    assert hist.checks
    assert hist.checks[0]["improvement"] > cfg.converged_tol
    assert float(loss().detach()) == pytest.approx(hist.checks[0]["before"])  # the stepped result


def test_fit_records_convergence_and_warns_when_not(toy_stats):
    model = ps.train.fit(toy_stats, n_factors=4, cycle_epochs=200, progress=False)
    t = model.training
    assert t["converged"] is True
    assert t["convergence"]["checks"][-1]["improvement"] < t["converged_tol"]
    assert t["betas"] == [0.9, 0.95]
    assert t["lr_history"][0] == pytest.approx(0.1)  # effects: the cosine starts at 0.1
    assert "convergence" not in toy_stats.uns["pertspectra"]["training"]  # history keys stay out
    with pytest.warns(UserWarning, match="did not converge"):
        short = ps.train.fit(toy_stats, n_factors=4, cycle_epochs=20, max_epochs=25, progress=False)
    assert short.training["converged"] is False
    assert ps.enrich.fit_warnings(short)[0].startswith("The fit did not converge")


def test_seeds_agree_on_a_real_crispri_screen(screen_path):
    stats = _schraivogel_stats(screen_path)
    losses = []
    for seed in (0, 1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # not converged would fail here
            model = ps.train.fit(stats, seed=seed, progress=False, threads=1)
        assert model.training["converged"]
        losses.append(model.training["final_loss"])
    losses = np.array(losses)
    assert np.ptp(losses) <= 0.005 * np.abs(losses).min()


def _schraivogel_stats(screen_path):
    adata = ps.io.read_screen(screen_path("schraivogel2020_k562_tapseq_crispri_74genes.h5ad"))
    return ps.stats.compute_group_stats(
        adata,
        perturbation_key="perturbation",
        normalize="log1p",
        exclude_labels=["none_detected"],
        progress=False,
    )


def test_converged_fit_is_within_tol_of_a_five_times_longer_run(screen_path):
    # the definition the check stands for; with the earlier check (a restart at a tenth of the
    # first rate, 0.01) seed 0 stopped 0.115% above the long run here
    stats = _schraivogel_stats(screen_path)
    model = ps.train.fit(stats, seed=0, progress=False, threads=1)
    assert model.training["converged"]
    long = ps.train.fit(stats, seed=0, cycle_epochs=5000, progress=False, threads=1)
    a, b = model.training["final_loss"], long.training["final_loss"]
    assert a - b <= model.training["converged_tol"] * abs(b)
