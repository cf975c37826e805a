"""Optimisation loop: AdamW under a cosine or stepped schedule; tensors in, history out.

Two schedules:

``"cosine"`` (default)
    AdamW with betas ``(0.9, 0.95)``; the learning rate falls from ``learning_rates[0]`` to
    ``learning_rates[-1]`` along half a cosine over ``cycle_epochs`` epochs. Adam's default
    ``beta2 = 0.999`` remembers the large gradients of the first epochs for thousands of epochs
    and so steps 5-20x below the nominal rate once gradients have shrunk; 0.95 forgets them
    (see ``docs/optimization.md`` for the study).
``"stepped"``
    The authors' schedule: AdamW with betas ``(0.9, 0.999)`` stepping through
    ``[1, 0.5, 0.1, 0.01, 0.001, 0.0001]`` when the loss stops improving, by one of two rules:
    ``"relative"`` (step when the loss improved by less than ``tol`` relative over
    ``patience`` epochs) or ``"paper"`` (the authors' counter: +1 at every epoch whose loss is
    not lower than the previous one; every 10 counts step down; stop at 60 counts). Unlike the
    authors' code the optimizer is never rebuilt when the rate steps down.

**Converged** means: a further run does not lower the objective by more than
``converged_tol`` (relative; default 0.1%). It is checked, not assumed: after the schedule
ends, a *check cycle* (a warm restart: a cosine from :data:`CHECK_RATE` = 0.1, or the first
rate if that is lower, down to the last one over a quarter of ``cycle_epochs``) runs from the
end point. If it improves the objective by less than ``converged_tol`` the fit is converged;
otherwise, under ``"cosine"``, check cycles repeat (each one also the next stretch of
optimisation, as in warm-restart schedules) until one does or ``max_epochs`` is reached. The
parameters returned are the best seen at the end of a cycle. Under ``"stepped"`` the check runs
on a copy and the stepped result is returned unchanged (the authors' procedure stays exact);
only ``converged`` and its evidence are added. ``benchmarks/convergence.py`` measures that a
converged default fit is within 0.1% of a run five times longer.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from ._config import TrainConfig

logger = logging.getLogger(__name__)

#: The authors' plateau rule steps the learning rate down every this many non-improving epochs.
PAPER_COUNTS_PER_STEP = 10
#: A check cycle lasts this share of ``cycle_epochs`` (at least :data:`MIN_CHECK_EPOCHS`).
CHECK_SHARE = 0.25
MIN_CHECK_EPOCHS = 50
#: A check cycle starts at this learning rate, or at the first rate if that is lower.
CHECK_RATE = 0.1


@dataclass
class History:
    """What happened during training.

    ``loss`` is the objective per epoch; ``recon`` and ``graph`` its two parts (the Poisson
    reconstruction before the weight ``lam``, and the graph term), when ``loss_fn`` returns
    them; ``lr`` the learning rate of each epoch; ``lr_steps`` the epochs after which the stepped
    schedule's rate stepped down; ``checks`` one entry per check cycle (see the module
    docstring): its first and last epoch, the objective before and after, and the relative
    improvement; ``check_rate`` the learning rate a check cycle starts at.
    """

    loss: list[float] = field(default_factory=list)
    recon: list[float] = field(default_factory=list)
    graph: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    lr_steps: list[int] = field(default_factory=list)
    checks: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str = ""
    converged: bool = False
    seconds: float = 0.0
    check_rate: float = CHECK_RATE

    @property
    def epochs(self) -> int:
        """Epochs run."""
        return len(self.loss)

    def convergence(self, tol: float) -> dict[str, Any]:
        """The evidence behind :attr:`converged` (stored as ``training["convergence"]``)."""
        return {
            "criterion": (
                f"a check cycle (warm restart at learning rate {self.check_rate:g}, cosine to "
                "the last rate, a quarter of cycle_epochs) lowers the objective by less than "
                f"{tol:g} (relative)"
            ),
            "tol": tol,
            "checks": list(self.checks),
            "last_improvement": self.checks[-1]["improvement"] if self.checks else None,
        }


class _Relative:
    def __init__(self, tol: float, patience: int) -> None:
        self.tol, self.patience, self.since = tol, patience, 0

    def step_down(self, losses: Sequence[float]) -> bool:
        self.since += 1
        if self.since < self.patience or len(losses) <= self.patience:
            return False
        old, new = losses[-1 - self.patience], losses[-1]
        if (old - new) / max(abs(new), 1e-12) < self.tol:
            self.since = 0
            return True
        return False


class _Paper:
    def __init__(self, patience: int) -> None:
        self.patience, self.counter = patience, 0

    def step_down(self, losses: Sequence[float]) -> bool:
        if len(losses) >= 2 and not losses[-1] < losses[-2]:
            self.counter += 1
            return self.counter % self.patience == 0
        return False


def cosine_rate(epoch: int, n_epochs: int, start: float, end: float) -> float:
    """Learning rate of ``epoch`` (0-based) on half a cosine from ``start`` to ``end``."""
    if n_epochs <= 1:
        return end
    frac = min(epoch / (n_epochs - 1), 1.0)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * frac))


class _Stepper:
    """One optimiser step at a time, recording the history; raises on divergence."""

    def __init__(
        self,
        params: Sequence[torch.nn.Parameter],
        loss_fn: Callable[[], Any],
        opt: torch.optim.Optimizer,
        hist: History,
        bar: Any,
    ) -> None:
        self.params, self.loss_fn, self.opt, self.hist, self.bar = params, loss_fn, opt, hist, bar
        self.t0 = time.perf_counter()

    def step(self, lr: float) -> float:
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        out = self.loss_fn()
        loss = out.total if hasattr(out, "total") else out
        loss.backward()
        value = float(loss.detach())
        hist = self.hist
        if not math.isfinite(value):
            msg = (
                f"the fit diverged: the loss became {value} at epoch {hist.epochs + 1} "
                f"(learning rate {lr:g}); lower lam or the first learning rate, "
                "or use dtype float64"
            )
            raise FloatingPointError(msg)
        self.opt.step()
        hist.loss.append(value)
        hist.lr.append(lr)
        if loss is not out:
            hist.recon.append(float(out.recon.detach()))
            hist.graph.append(float(out.graph.detach()))
        self.bar.update(1)
        if hist.epochs % 20 == 0:
            self.bar.set_postfix(loss=f"{value:.6g}", lr=f"{lr:.3g}")
        if hist.epochs % 500 == 0:
            logger.debug(
                "epoch %d: loss %.8g, lr %g, %.3f s/epoch",
                hist.epochs,
                value,
                lr,
                (time.perf_counter() - self.t0) / hist.epochs,
            )
        return value

    def value(self) -> float:
        """The objective at the current parameters (no step)."""
        with torch.no_grad():
            out = self.loss_fn()
        return float((out.total if hasattr(out, "total") else out).detach())

    def snapshot(self) -> list[torch.Tensor]:
        return [p.detach().clone() for p in self.params]

    def restore(self, state: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, v in zip(self.params, state, strict=True):
                p.copy_(v)


def run(
    params: Sequence[torch.nn.Parameter],
    loss_fn: Callable[[], Any],
    config: TrainConfig,
    *,
    weight_decay: float = 0.001,
    progress: bool = True,
) -> History:
    """Minimise ``loss_fn()`` over ``params`` with AdamW under ``config``'s schedule.

    Parameters
    ----------
    params
        Parameters to optimise.
    loss_fn
        Computes the full-batch objective from the current parameters: a 0-dim tensor, or an
        object with ``total``, ``recon`` and ``graph`` 0-dim tensors
        (:class:`~pertspectra.model._loss.LossTerms`), whose parts are then recorded too.
    config
        Optimisation settings; ``config.learning_rates`` and ``config.betas`` must be set (see
        :meth:`TrainConfig.resolved`).
    weight_decay
        AdamW weight decay (:attr:`pertspectra.model.ModelConfig.weight_decay`).
    progress
        Show progress (a bar on a terminal, a line every 30 s in a log).

    Returns
    -------
    The :class:`History`, with ``converged`` and the check cycles' evidence.
    """
    from .._utils import progress_bar

    if config.learning_rates is None or config.betas is None:
        msg = (
            "config.learning_rates or config.betas is None: resolve it first (TrainConfig.resolved)"
        )
        raise ValueError(msg)
    rates = list(config.learning_rates)
    beta1, beta2 = config.betas
    opt = torch.optim.AdamW(params, lr=rates[0], betas=(beta1, beta2), weight_decay=weight_decay)
    hist = History()
    t0 = time.perf_counter()
    bar = progress_bar(config.max_epochs, desc="fit", unit="epochs", enabled=progress)
    hist.check_rate = min(CHECK_RATE, rates[0])
    stepper = _Stepper(params, loss_fn, opt, hist, bar)
    try:
        if config.schedule == "cosine":
            _cosine(stepper, config, rates)
        else:
            _stepped(stepper, config, rates)
    finally:
        bar.close()
    hist.seconds = time.perf_counter() - t0
    return hist


def _check_epochs(config: TrainConfig) -> int:
    return max(MIN_CHECK_EPOCHS, round(CHECK_SHARE * config.cycle_epochs))


def _check_cycle(
    stepper: _Stepper, config: TrainConfig, rates: list[float], before: float
) -> tuple[float, dict[str, float]]:
    """Run one check cycle from the current parameters; return its end value and record."""
    hist = stepper.hist
    n = min(_check_epochs(config), config.max_epochs - hist.epochs)
    first = hist.epochs + 1
    for e in range(n):
        stepper.step(cosine_rate(e, n, hist.check_rate, rates[-1]))
    after = stepper.value()
    record = {
        "first_epoch": first,
        "last_epoch": hist.epochs,
        "epochs": n,
        "before": before,
        "after": after,
        "improvement": (before - after) / max(abs(after), 1e-12),
    }
    hist.checks.append(record)
    return after, record


def _cosine(stepper: _Stepper, config: TrainConfig, rates: list[float]) -> None:
    hist = stepper.hist
    n = min(config.cycle_epochs, config.max_epochs)
    for e in range(n):
        stepper.step(cosine_rate(e, n, rates[0], rates[-1]))
    best_value, best_state = stepper.value(), stepper.snapshot()
    while hist.epochs < config.max_epochs:
        after, record = _check_cycle(stepper, config, rates, best_value)
        if after < best_value:
            best_value, best_state = after, stepper.snapshot()
        if record["improvement"] < config.converged_tol and record["epochs"] >= _check_epochs(
            config
        ):
            hist.converged = True
            break
    stepper.restore(best_state)
    if hist.converged:
        hist.stop_reason = (
            f"converged after {hist.epochs} epochs: the last check cycle improved the "
            f"objective by {hist.checks[-1]['improvement']:.2e} (< {config.converged_tol:g})"
        )
    elif not hist.checks or hist.checks[-1]["epochs"] < _check_epochs(config):
        hist.stop_reason = (
            f"reached max_epochs={config.max_epochs} before converging (the schedule or its "
            "check cycle was cut short, so convergence could not be checked)"
        )
    else:
        hist.stop_reason = (
            f"reached max_epochs={config.max_epochs} before converging (the last check cycle "
            f"still improved the objective by {hist.checks[-1]['improvement']:.2e}; tolerance "
            f"{config.converged_tol:g})"
        )


def _stepped(stepper: _Stepper, config: TrainConfig, rates: list[float]) -> None:
    hist = stepper.hist
    rule = (
        _Relative(config.tol, config.patience)
        if config.stopping == "relative"
        else _Paper(PAPER_COUNTS_PER_STEP)
    )
    stage = 0
    fired = False
    for _ in range(config.max_epochs):
        stepper.step(rates[stage])
        if rule.step_down(hist.loss):
            stage += 1
            hist.lr_steps.append(hist.epochs)
            if stage >= len(rates):
                fired = True
                break
            logger.debug("epoch %d: learning rate -> %g", hist.epochs, rates[stage])
    # verify on a copy: the stepped result itself is returned unchanged
    end_value, end_state = stepper.value(), stepper.snapshot()
    n_loss = hist.epochs
    budget = replace(config, max_epochs=config.max_epochs + _check_epochs(config))
    # a fresh optimizer with the cosine betas: beta2 = 0.999 moments would hide the way down
    stepper.opt = torch.optim.AdamW(
        stepper.params,
        lr=rates[0],
        betas=(0.9, 0.95),
        weight_decay=stepper.opt.param_groups[0]["weight_decay"],
    )
    _, record = _check_cycle(stepper, budget, rates, end_value)
    stepper.restore(end_state)
    for name in ("loss", "recon", "graph", "lr"):
        del getattr(hist, name)[n_loss:]
    hist.converged = record["improvement"] < config.converged_tol
    ended = (
        f"the {config.stopping} rule stopped after {n_loss} epochs"
        if fired
        else f"reached max_epochs={config.max_epochs}"
    )
    verdict = (
        "converged"
        if hist.converged
        else f"not converged: a check cycle improved the objective by {record['improvement']:.2e}"
    )
    hist.stop_reason = f"{ended}; {verdict} (tolerance {config.converged_tol:g})"
