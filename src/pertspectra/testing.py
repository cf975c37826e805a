"""Helpers for tests, benchmarks and the demo (ours and other packages').

- :func:`shared_data_dir`: the folder of real screens and knowledge files (``../shared/data``
  beside the repository, or ``$PERTSPECTRA_SHARED_DATA``);
- :func:`devices`: the torch devices to test on (``"cpu"``, plus ``"cuda"`` when present);
- :func:`assert_allclose`: :func:`numpy.testing.assert_allclose` for numpy or torch input,
  optionally up to the sign of each column;
- :func:`assert_models_equal`: two fitted models hold the same parameters and names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .model._fitted import FittedModel

#: Environment variable naming the shared data folder.
SHARED_DATA_ENV = "PERTSPECTRA_SHARED_DATA"


def shared_data_dir(*, required: str | None = None) -> Path | None:
    """The shared real-data folder, or ``None`` when it is absent.

    Looked up, in order: ``$PERTSPECTRA_SHARED_DATA``; ``shared/data`` beside the current
    directory's parent (a checkout next to ``shared/``); ``shared/data`` beside this
    repository's checkout.

    Parameters
    ----------
    required
        A path relative to the folder (``"screens/papalexi2021_thp1_eccite_299genes.h5ad"``)
        that must exist; ``None`` if it does not.

    Returns
    -------
    The folder, or ``None``.
    """
    env = os.environ.get(SHARED_DATA_ENV)
    candidates = [Path(env)] if env else []
    candidates += [
        Path.cwd().parent / "shared" / "data",
        Path(__file__).resolve().parents[3] / "shared" / "data",
    ]
    for folder in candidates:
        if folder.is_dir() and (required is None or (folder / required).exists()):
            return folder
    return None


def devices() -> list[str]:
    """Torch devices available for tests: ``["cpu"]``, plus ``"cuda"`` when a GPU is present."""
    import torch

    return ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def assert_allclose(
    actual: Any,
    desired: Any,
    *,
    rtol: float = 1e-7,
    atol: float = 0.0,
    up_to_sign: bool = False,
    err_msg: str = "",
) -> None:
    """Assert two arrays (numpy or torch, any device) are equal within tolerances.

    Parameters
    ----------
    actual, desired
        Arrays of one shape.
    rtol, atol
        As :func:`numpy.testing.assert_allclose`.
    up_to_sign
        Flip each column of ``actual`` to the sign that best matches ``desired`` first
        (factors are identified only up to sign).
    err_msg
        Shown on failure.
    """
    a, d = _numpy(actual), _numpy(desired)
    if up_to_sign:
        if a.shape != d.shape:
            msg = f"shapes differ: {a.shape} vs {d.shape}"
            raise AssertionError(msg)
        a = a.reshape(a.shape[0], -1) if a.ndim > 1 else a[:, None]
        d2 = d.reshape(a.shape)
        signs = np.where((a * d2).sum(axis=0) < 0, -1.0, 1.0)
        a = (a * signs).reshape(d.shape)
    np.testing.assert_allclose(a, d, rtol=rtol, atol=atol, err_msg=err_msg)


def assert_models_equal(a: FittedModel, b: FittedModel, *, rtol: float = 0.0) -> None:
    """Assert two fitted models have the same genes, design, config and parameters."""
    if a.genes != b.genes:
        msg = "models have different genes"
        raise AssertionError(msg)
    if a.design.columns != b.design.columns or a.design.labels != b.design.labels:
        msg = "models have different designs"
        raise AssertionError(msg)
    if a.config != b.config:
        msg = f"models have different configs: {a.config} vs {b.config}"
        raise AssertionError(msg)
    for name in ("P", "W", "B", "kappa", "gene_scale"):
        assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, err_msg=name)
