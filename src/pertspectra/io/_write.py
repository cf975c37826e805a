"""Writing results without ever leaving a half-written or clobbered file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .._utils import atomic_path

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData


def _check_target(path: Path, *, overwrite: bool, inputs: tuple[Path, ...]) -> None:
    for source in inputs:
        if path.exists() and source.exists() and path.samefile(source):
            msg = f"{path} is an input file; choose another output path (inputs are never overwritten)"
            raise FileExistsError(msg)
    if path.exists() and not overwrite:
        msg = f"{path} already exists; pass --overwrite (overwrite=True) to replace it"
        raise FileExistsError(msg)


def write_table(
    table: pd.DataFrame,
    path: str | os.PathLike,
    *,
    overwrite: bool = True,
    inputs: tuple[str | os.PathLike, ...] = (),
) -> Path:
    """Write ``table`` as CSV (or Parquet for ``.parquet``) to a temporary file, then rename.

    Parameters
    ----------
    table
        The table; its index is written.
    path
        Output file.
    overwrite
        Replace an existing file.
    inputs
        Files the output must not be (never overwritten, whatever ``overwrite`` says).

    Returns
    -------
    The path written.
    """
    path = Path(path)
    _check_target(path, overwrite=overwrite, inputs=tuple(Path(p) for p in inputs))
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            table.to_parquet(tmp)
        else:
            table.to_csv(tmp)
    return path


def write_h5ad(
    adata: AnnData,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    inputs: tuple[str | os.PathLike, ...] = (),
) -> Path:
    """Write ``adata`` to ``.h5ad`` through a temporary file renamed on success.

    Parameters
    ----------
    adata
        The AnnData.
    path
        Output file.
    overwrite
        Replace an existing file.
    inputs
        Files the output must not be (never overwritten, whatever ``overwrite`` says).

    Returns
    -------
    The path written.
    """
    path = Path(path)
    _check_target(path, overwrite=overwrite, inputs=tuple(Path(p) for p in inputs))
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp)
    return path


def write_json(
    obj: object, path: str | os.PathLike, *, overwrite: bool = True, indent: int = 1
) -> Path:
    """Write ``obj`` as JSON to a temporary file, then rename (non-JSON values as strings).

    Parameters
    ----------
    obj
        A JSON-serialisable object (anything else is written as its ``str``).
    path
        Output file.
    overwrite
        Replace an existing file.
    indent
        JSON indentation.

    Returns
    -------
    The path written.
    """
    import json

    path = Path(path)
    _check_target(path, overwrite=overwrite, inputs=())
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent, default=str))
    return path
