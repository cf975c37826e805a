"""Training: ``fit`` (AnnData in, :class:`~pertspectra.model.FittedModel` out) and the loop."""

from ._fit import fit, is_group_stats, store_results
from ._loop import EFFECTS_LEARNING_RATES, PAPER_LEARNING_RATES, History, TrainConfig, run

__all__ = [
    "EFFECTS_LEARNING_RATES",
    "PAPER_LEARNING_RATES",
    "History",
    "TrainConfig",
    "fit",
    "is_group_stats",
    "run",
    "store_results",
]
