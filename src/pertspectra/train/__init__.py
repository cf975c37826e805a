"""Training: ``fit`` (AnnData in, :class:`~pertspectra.model.FittedModel` out), the loop, forecasts."""

from ._config import (
    COSINE_LEARNING_RATES,
    EFFECTS_COSINE_LEARNING_RATES,
    EFFECTS_LEARNING_RATES,
    PAPER_LEARNING_RATES,
    TrainConfig,
)
from ._fit import fit
from ._fit_conditions import default_condition_factors, fit_conditions
from ._forecast import forecast, forecast_fit
from ._forecast_text import format_forecast
from ._loop import History, run
from ._options import is_group_stats
from ._store import HISTORY_KEYS, store_results

__all__ = [
    "COSINE_LEARNING_RATES",
    "EFFECTS_COSINE_LEARNING_RATES",
    "EFFECTS_LEARNING_RATES",
    "HISTORY_KEYS",
    "PAPER_LEARNING_RATES",
    "History",
    "TrainConfig",
    "default_condition_factors",
    "fit",
    "fit_conditions",
    "forecast",
    "forecast_fit",
    "format_forecast",
    "is_group_stats",
    "run",
    "store_results",
]
