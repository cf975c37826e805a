"""The PertSpectra model: config, parameters, the one loss, and the fitted-model container.

``FittedModel``/``load_model``/``ModelConfig`` need only numpy; the torch parts
(``PertSpectraModule``, ``pertspectra_loss``, ``graph_nll``, ``GraphPrior``) load on access.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._condition_model import ConditionModel, is_condition_model
from ._config import ModelConfig, default_n_factors, signal_n_factors
from ._fitted import FittedModel, load_model, versions

_LAZY = {
    "PertSpectraModule": "._module",
    "ConditionModule": "._condition_module",
    "pertspectra_loss": "._loss",
    "poisson_recon": "._loss",
    "LossTerms": "._loss",
    "graph_nll": "._graph",
    "graph_nll_dense": "._graph",
    "GraphPrior": "._graph",
}

__all__ = [
    "ConditionModel",
    "FittedModel",
    "ModelConfig",
    "default_n_factors",
    "is_condition_model",
    "load_model",
    "signal_n_factors",
    "versions",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
