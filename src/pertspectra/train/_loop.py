"""Optimisation loop: AdamW with the paper's stepped learning rates; tensors in, history out.

The authors step the learning rate through ``[1, 0.5, 0.1, 0.01, 0.001, 0.0001]`` when the
training loss stops improving. Two stopping rules decide when a step (and the end) comes:

``"relative"`` (default)
    Step down when the loss improved by less than ``tol`` (relative to its magnitude) over the
    last ``patience`` epochs; stop after the last rate plateaus. Robust where the loss keeps
    creeping down by tiny amounts (the paper's rule then never fires).
``"paper"``
    The authors' counter: +1 at every epoch whose loss is not lower than the previous one;
    every 10 counts step down; stop at 60 counts.

Both stop at ``max_epochs``. Unlike the authors' code, the optimizer is never rebuilt when the
rate steps down (their rebuild loses Adam's moments and silently changes the weight decay).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from ._config import TrainConfig

logger = logging.getLogger(__name__)

#: The authors' plateau rule steps the learning rate down every this many non-improving epochs.
PAPER_COUNTS_PER_STEP = 10


@dataclass
class History:
    """What happened during training.

    ``loss`` is the objective per epoch; ``recon`` and ``graph`` its two parts (the Poisson
    reconstruction before the weight ``lam``, and the graph term), when ``loss_fn`` returns
    them; ``lr_steps`` the epochs after which the learning rate stepped down.
    """

    loss: list[float] = field(default_factory=list)
    recon: list[float] = field(default_factory=list)
    graph: list[float] = field(default_factory=list)
    lr_steps: list[int] = field(default_factory=list)
    stop_reason: str = ""
    seconds: float = 0.0

    @property
    def epochs(self) -> int:
        """Epochs run."""
        return len(self.loss)


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


def run(
    params: Sequence[torch.nn.Parameter],
    loss_fn: Callable[[], Any],
    config: TrainConfig,
    *,
    weight_decay: float = 0.001,
    progress: bool = True,
) -> History:
    """Minimise ``loss_fn()`` over ``params`` with AdamW and the stepped schedule.

    Parameters
    ----------
    params
        Parameters to optimise.
    loss_fn
        Computes the full-batch objective from the current parameters: a 0-dim tensor, or an
        object with ``total``, ``recon`` and ``graph`` 0-dim tensors
        (:class:`~pertspectra.model._loss.LossTerms`), whose parts are then recorded too.
    config
        Optimisation settings; ``config.learning_rates`` must be set (see
        :meth:`TrainConfig.resolved`).
    weight_decay
        AdamW weight decay (:attr:`pertspectra.model.ModelConfig.weight_decay`).
    progress
        Show progress (a bar on a terminal, a line every 30 s in a log).
    """
    from .._utils import progress_bar

    if config.learning_rates is None:
        msg = "config.learning_rates is None: resolve it first (TrainConfig.resolved)"
        raise ValueError(msg)
    rates = list(config.learning_rates)
    opt = torch.optim.AdamW(params, lr=rates[0], weight_decay=weight_decay)
    rule = (
        _Relative(config.tol, config.patience)
        if config.stopping == "relative"
        else _Paper(PAPER_COUNTS_PER_STEP)
    )
    hist = History()
    stage = 0
    t0 = time.perf_counter()
    bar = progress_bar(config.max_epochs, desc="fit", unit="epochs", enabled=progress)
    try:
        for _ in range(config.max_epochs):
            opt.zero_grad(set_to_none=True)
            out = loss_fn()
            loss = out.total if hasattr(out, "total") else out
            loss.backward()
            value = float(loss.detach())
            if not math.isfinite(value):
                msg = (
                    f"the fit diverged: the loss became {value} at epoch {hist.epochs + 1} "
                    f"(learning rate {rates[stage]:g}); lower lam or the first learning rate, "
                    "or use dtype float64"
                )
                raise FloatingPointError(msg)
            opt.step()
            hist.loss.append(value)
            if loss is not out:
                hist.recon.append(float(out.recon.detach()))
                hist.graph.append(float(out.graph.detach()))
            bar.update(1)
            if hist.epochs % 20 == 0:
                bar.set_postfix(loss=f"{value:.6g}", lr=rates[stage])
            if hist.epochs % 500 == 0:
                logger.debug(
                    "epoch %d: loss %.8g, lr %g, %.3f s/epoch",
                    hist.epochs,
                    value,
                    rates[stage],
                    (time.perf_counter() - t0) / hist.epochs,
                )
            if rule.step_down(hist.loss):
                stage += 1
                hist.lr_steps.append(hist.epochs)
                if stage >= len(rates):
                    hist.stop_reason = (
                        f"converged ({config.stopping} rule) after {hist.epochs} epochs"
                    )
                    break
                for group in opt.param_groups:
                    group["lr"] = rates[stage]
                logger.debug("epoch %d: learning rate -> %g", hist.epochs, rates[stage])
        else:
            hist.stop_reason = f"reached max_epochs={config.max_epochs}"
    finally:
        bar.close()
    hist.seconds = time.perf_counter() - t0
    return hist
