"""PertSpectra for Perturb-seq screens.

A graph-regularized triple matrix factorization (Chang et al.) fitted exactly on
per-perturbation sufficient statistics. The stage namespaces follow the pipeline (data
flows one way, each stage imports only from those before it)::

    design -> io -> stats -> priors -> model -> train -> predict -> evaluate -> enrich
    -> similarity -> get -> pl -> report

plus ``datasets`` (simulated screens) and ``testing`` (helpers for tests and benchmarks).
``import pertspectra`` is cheap: each namespace loads on first access, so torch is imported
only when a stage that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._utils import VERSION as __version__

_SUBMODULES = (
    "datasets",
    "design",
    "enrich",
    "evaluate",
    "get",
    "io",
    "model",
    "pl",
    "predict",
    "priors",
    "report",
    "similarity",
    "stats",
    "testing",
    "train",
)
_ATTRS = {
    "fit": "pertspectra.train",
    "load_model": "pertspectra.model",
    "FittedModel": "pertspectra.model",
    "compute_group_stats": "pertspectra.stats",
    "normalize_log1p": "pertspectra.stats",
}

if TYPE_CHECKING:  # pragma: no cover
    from . import (  # noqa: F401
        datasets,
        design,
        enrich,
        evaluate,
        get,
        io,
        model,
        pl,
        predict,
        priors,
        report,
        similarity,
        stats,
        testing,
        train,
    )

__all__ = [*_SUBMODULES, *_ATTRS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"pertspectra.{name}")
    if name in _ATTRS:
        return getattr(importlib.import_module(_ATTRS[name]), name)
    msg = f"module 'pertspectra' has no attribute {name!r}"
    raise AttributeError(msg)
