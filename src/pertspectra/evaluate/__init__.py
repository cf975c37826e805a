"""Evaluation: metrics on the change from control, baselines, and splits."""

from ._baselines import baseline_predictions
from ._metrics import prediction_metrics
from ._split import split_combinations

__all__ = ["baseline_predictions", "prediction_metrics", "split_combinations"]
