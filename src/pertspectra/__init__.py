"""PertSpectra for Perturb-seq screens.

A graph-regularized triple matrix factorization (Chang et al.) fitted exactly on
per-perturbation sufficient statistics. ``import pertspectra`` is cheap: the stage
namespaces (``design``, ``stats``, ``model``, ``train``, ``predict``, ``priors``, ``io``,
``evaluate``, ``datasets``) load on first access, so torch is imported only when needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SUBMODULES = (
    "datasets",
    "design",
    "evaluate",
    "io",
    "model",
    "predict",
    "priors",
    "stats",
    "train",
    "testing",
)
_ATTRS = {
    "fit": "pertspectra.train",
    "load_model": "pertspectra.model",
    "FittedModel": "pertspectra.model",
    "compute_group_stats": "pertspectra.stats",
    "normalize_log1p": "pertspectra.stats",
}

if TYPE_CHECKING:  # pragma: no cover
    from . import datasets, design, evaluate, io, model, predict, priors, stats, train  # noqa: F401

__all__ = [*_SUBMODULES, *_ATTRS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"pertspectra.{name}")
    if name in _ATTRS:
        return getattr(importlib.import_module(_ATTRS[name]), name)
    msg = f"module 'pertspectra' has no attribute {name!r}"
    raise AttributeError(msg)
