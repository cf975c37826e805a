"""Evaluation: metrics on the change from control, baselines, splits and held-out fits."""

from ._baselines import baseline_predictions
from ._holdout import Holdout, holdout_cells, holdout_combinations, split_cells
from ._metrics import matched_correlation, prediction_metrics
from ._split import split_combinations

__all__ = [
    "Holdout",
    "baseline_predictions",
    "holdout_cells",
    "holdout_combinations",
    "matched_correlation",
    "prediction_metrics",
    "split_cells",
    "split_combinations",
]
