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
optimisation, as in warm-restart schedules) until one does or ``max_epochs`` is reached. Each
check cycle after a failed one is :data:`CHECK_GROWTH` = 2 times longer (SGDR's ``T_mult``), so
the last check of a fit that needed several is about as long as everything before it: a fit
whose objective still creeps down (a large STRING-structured prior) is checked against a run
twice as long, not a quarter longer. The parameters returned are the best seen at the end of a
cycle. Under ``"stepped"`` the check runs on a copy and the stepped result is returned unchanged
(the authors' procedure stays exact); only ``converged`` and its evidence are added.
``benchmarks/convergence.py`` measures a converged default fit against a run five times longer.

**Precision**: with ``config.matmul_precision`` set, each step's graph products run at that
precision (:func:`~pertspectra.model._graph.tile_precision`; the recorded per-epoch losses then
carry its error), while the objective values of the check cycles, which decide convergence and
the best state, are evaluated at the caller's precision.

**Checkpoints** (``run(..., checkpoint=slot)``): the state is written every ``slot.every``
seconds, at the end of the stepped schedule, at the end and on SIGINT/SIGTERM, and a run started
on a checkpoint ends as an uninterrupted one would, bit for bit (:mod:`._checkpoint`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch

from ..model._graph import tile_precision
from ._checkpoint import deferred_signals, pack, unpack
from ._history import CHECK_RATE, History
from ._optim import adamw
from ._rules import PAPER_COUNTS_PER_STEP, _Paper, _Relative

__all__ = ["CHECK_RATE", "History", "cosine_rate", "run"]

if TYPE_CHECKING:
    from ._checkpoint import Slot
    from ._config import TrainConfig

logger = logging.getLogger(__name__)

#: A check cycle lasts this share of ``cycle_epochs`` (at least :data:`MIN_CHECK_EPOCHS`).
CHECK_SHARE = 0.25
MIN_CHECK_EPOCHS = 50
#: Each check cycle after a failed one is this many times longer than it.
CHECK_GROWTH = 2.0


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
        self.precision: str | None = None  # of the steps' graph products (values stay exact)
        # the schedule position beyond the history (checkpointed with it)
        self.phase = "schedule"  # "schedule", then "verify" (stepped only), then "done"
        self.best_value: float | None = None
        self.best_state: list[torch.Tensor] | None = None
        self.extra: dict[str, Any] = {}  # the stepped schedule's stage and rule counters
        # checkpointing
        self.checkpoint: Slot | None = None
        self.writable = True  # False while the stepped schedule's check runs on a copy
        self.pending: int | None = None  # a signal received, acted on at the epoch's end
        self.seconds_before = 0.0  # training seconds of the runs this one resumes
        self.last_write = time.monotonic()

    def step(self, lr: float) -> float:
        for group in self.opt.param_groups:
            group["lr"] = lr * group.get("rate_scale", 1.0)
        self.opt.zero_grad(set_to_none=True)
        with tile_precision(self.precision):
            out = self.loss_fn()
        loss = out.total if hasattr(out, "total") else out
        loss.backward()
        value = float(loss.detach())
        hist = self.hist
        if not math.isfinite(value):
            msg = (
                f"the fit diverged: the loss became {value} at epoch {hist.epochs + 1} "
                f"(learning rate {lr:g}); "
                + (
                    "the objective overflows at the initial parameters: lower lam, or use dtype "
                    "float64"
                    if hist.epochs == 0
                    else "lower the first learning rate (learning_rates), or use dtype float64"
                )
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

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.t0

    def boundary(self) -> None:
        """End of an epoch (a consistent state): write a checkpoint when due or interrupted."""
        if self.checkpoint is None:
            return
        if self.pending is not None:
            if self.writable:
                self.write()
            msg = (
                f"interrupted after epoch {self.hist.epochs}; the checkpoint "
                f"{self.checkpoint.path} holds the fit so far"
            )
            raise KeyboardInterrupt(msg)
        if self.writable and time.monotonic() - self.last_write >= self.checkpoint.every:
            self.write()

    def write(self) -> None:
        """Write the checkpoint now."""
        if self.checkpoint is not None:
            self.checkpoint.write(*pack(self))
            self.last_write = time.monotonic()


def run(
    params: Sequence[torch.nn.Parameter],
    loss_fn: Callable[[], Any],
    config: TrainConfig,
    *,
    weight_decay: float = 0.001,
    progress: bool = True,
    checkpoint: Slot | None = None,
    rate_scales: Sequence[float] | None = None,
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
    checkpoint
        Where to keep checkpoints (:class:`~pertspectra.train._checkpoint.Slot`); when it holds
        one, the run continues from it (see the module docstring).
    rate_scales
        Each parameter's learning rate as a multiple of the schedule's (one per parameter;
        ``None``: all 1), e.g. :attr:`TrainConfig.w_rate_scale` for ``W``.

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
    opt = adamw(
        params,
        lr=rates[0],
        betas=(beta1, beta2),
        weight_decay=weight_decay,
        rate_scales=rate_scales,
    )
    hist = History()
    t0 = time.perf_counter()
    bar = progress_bar(config.max_epochs, desc="fit", unit="epochs", enabled=progress)
    hist.check_rate = min(CHECK_RATE, rates[0])
    stepper = _Stepper(params, loss_fn, opt, hist, bar)
    stepper.checkpoint, stepper.precision = checkpoint, config.matmul_precision
    try:
        saved = None if checkpoint is None else checkpoint.read()
        if saved is not None and checkpoint is not None:
            unpack(stepper, *saved)
            bar.update(hist.epochs)
            logger.info("resuming at epoch %d from %s", hist.epochs, checkpoint.path)
        with deferred_signals(stepper):
            if stepper.phase != "done":
                if config.schedule == "cosine":
                    _cosine(stepper, config, rates)
                else:
                    _stepped(stepper, config, rates)
                stepper.phase = "done"
                stepper.writable = True
                stepper.write()
            if stepper.pending is not None:
                where = "nothing" if checkpoint is None else checkpoint.path
                msg = f"interrupted after the run finished; {where} holds its result"
                raise KeyboardInterrupt(msg)
    finally:
        bar.close()
    hist.seconds = stepper.seconds_before + time.perf_counter() - t0
    return hist


def _check_epochs(config: TrainConfig, done: int = 0) -> int:
    """Length of the check cycle that follows ``done`` earlier ones."""
    first = max(MIN_CHECK_EPOCHS, round(CHECK_SHARE * config.cycle_epochs))
    return round(first * CHECK_GROWTH**done)


def _last_check_full(hist: History, config: TrainConfig) -> bool:
    """Whether the last check cycle (if any) ran its whole length (was not cut short)."""
    k = len(hist.checks)
    return k > 0 and hist.checks[-1]["epochs"] >= _check_epochs(config, k - 1)


def _check_cycle(
    stepper: _Stepper, config: TrainConfig, rates: list[float], before: float, start: int
) -> tuple[float, dict[str, float]]:
    """Run (or finish) the check cycle that began after epoch ``start``; return its end value and record."""
    hist = stepper.hist
    n = min(_check_epochs(config, len(hist.checks)), config.max_epochs - start)
    for e in range(hist.epochs - start, n):
        stepper.step(cosine_rate(e, n, hist.check_rate, rates[-1]))
        stepper.boundary()
    after = stepper.value()
    record = {
        "first_epoch": start + 1,
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
    if stepper.best_value is None:  # the schedule itself (a resumed run may start inside it)
        for e in range(hist.epochs, n):
            stepper.step(cosine_rate(e, n, rates[0], rates[-1]))
            stepper.boundary()
        stepper.best_value, stepper.best_state = stepper.value(), stepper.snapshot()
        stepper.boundary()
    while True:  # check cycles; each starts where the last ended
        if _last_check_full(hist, config) and hist.checks[-1]["improvement"] < config.converged_tol:
            hist.converged = True
            break
        start = int(hist.checks[-1]["last_epoch"]) if hist.checks else n
        if start >= config.max_epochs:
            break
        after, _ = _check_cycle(stepper, config, rates, stepper.best_value, start)
        if after < stepper.best_value:
            stepper.best_value, stepper.best_state = after, stepper.snapshot()
        stepper.boundary()
    assert stepper.best_state is not None  # set with best_value
    stepper.restore(stepper.best_state)
    if hist.converged:
        hist.stop_reason = (
            f"converged after {hist.epochs} epochs: the last check cycle improved the "
            f"objective by {hist.checks[-1]['improvement']:.2e} (< {config.converged_tol:g})"
        )
    elif not _last_check_full(hist, config) and len(hist.checks) >= 2:
        hist.stop_reason = (
            f"reached max_epochs={config.max_epochs} before converging (the last full check "
            f"cycle still improved the objective by {hist.checks[-2]['improvement']:.2e}; "
            f"tolerance {config.converged_tol:g}; the next one was cut short)"
        )
    elif not _last_check_full(hist, config):
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
    extra = stepper.extra
    if not extra:
        extra.update(stage=0, fired=False, rule=dict(vars(rule)))
    for k, v in extra["rule"].items():
        setattr(rule, k, v)
    stage, fired = int(extra["stage"]), bool(extra["fired"])
    while stepper.phase == "schedule" and hist.epochs < config.max_epochs:
        stepper.step(rates[stage])
        if rule.step_down(hist.loss):
            stage += 1
            hist.lr_steps.append(hist.epochs)
            if stage >= len(rates):
                fired = True
            else:
                logger.debug("epoch %d: learning rate -> %g", hist.epochs, rates[stage])
        extra.update(stage=stage, fired=fired, rule=dict(vars(rule)))
        if fired:
            break
        stepper.boundary()
    if stepper.phase == "schedule":
        stepper.phase = "verify"
        stepper.write()  # a resumed run restarts the check below from here
    stepper.writable = False
    # verify on a copy: the stepped result itself is returned unchanged
    end_value, end_state = stepper.value(), stepper.snapshot()
    n_loss = hist.epochs
    budget = replace(config, max_epochs=config.max_epochs + _check_epochs(config))
    # a fresh optimizer with the cosine betas: beta2 = 0.999 moments would hide the way down
    stepper.opt = adamw(
        stepper.params,
        lr=rates[0],
        betas=(0.9, 0.95),
        weight_decay=stepper.opt.param_groups[0]["weight_decay"],
        rate_scales=[g["rate_scale"] for g in stepper.opt.param_groups for _ in g["params"]],
    )
    _, record = _check_cycle(stepper, budget, rates, end_value, hist.epochs)
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
