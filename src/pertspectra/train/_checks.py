"""Checks of a fit's settings and results that keep a run finite or stop it with a clear message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model._config import ModelConfig
    from ._config import TrainConfig


def check_step_settings(config: ModelConfig, tconfig: TrainConfig) -> None:
    """Refuse a weight decay that AdamW would turn into a sign flip or blow-up at every step."""
    rate = max(tconfig.learning_rates or (0.0,))
    decay = float(config.weight_decay or 0.0)
    if decay * rate >= 1.0:
        msg = (
            f"weight_decay={decay:g} times the learning rate {rate:g} is >= 1: AdamW would "
            "multiply every parameter by (1 - weight_decay * rate) <= 0 at each step; lower "
            f"weight_decay below {1.0 / rate:g} (or the learning_rates)"
        )
        raise ValueError(msg)


def check_dtype_range(weighted_sum: Any, dtype: str) -> None:
    """Refuse group statistics that overflow the working dtype (before any fitting)."""
    import torch

    if not bool(torch.isfinite(weighted_sum).all()):
        msg = (
            f"the expression values exceed the {dtype} range (largest group mean beyond "
            f"{torch.finfo(weighted_sum.dtype).max:.3g}); log-normalize the data "
            "(normalize='log1p') or use dtype='float64'"
        )
        raise ValueError(msg)


def check_finite_end(module: Any, terms: Any) -> None:
    """The fitted parameters and objective must be finite (the loop checks each epoch's loss)."""
    import torch

    bad = [n for n, p in module.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad or not bool(torch.isfinite(terms.total)):
        msg = (
            f"the fit diverged: {'the parameters ' + ', '.join(bad) if bad else 'the objective'} "
            "became infinite or NaN at the last step; lower the first learning rate "
            "(learning_rates), or use dtype float64"
        )
        raise FloatingPointError(msg)
