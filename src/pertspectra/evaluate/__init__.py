"""Evaluation: metrics on the change from control, baselines, and splits."""

from ._baselines import baseline_predictions
from ._metrics import matched_correlation, prediction_metrics
from ._split import split_combinations

__all__ = [
    "baseline_predictions",
    "matched_correlation",
    "prediction_metrics",
    "split_combinations",
]
