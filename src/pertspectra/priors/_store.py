"""Prior files: only the graph and its provenance, aligned to the data's genes.

``pertspectra prior`` writes a small ``.h5ad`` with no cells: ``var`` (the data's
``var_names``, in order), ``varp["pertspectra_prior"]`` (the graph) and
``uns["pertspectra_prior"]`` (provenance and coverage report, ``graph_only: true``, the
checksum of the data it was built for). ``pertspectra fit DATA --prior FILE`` reads it back,
checks that its genes are the data's, and validates the graph. HDF5 through anndata only: no
pickle, nothing executed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._keys import KEYS
from ._check import check_prior_matrix, check_shared_genes

if TYPE_CHECKING:
    from collections.abc import Sequence

    import scipy.sparse as sp
    from anndata import AnnData


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def prior_only(adata: AnnData, *, key: str | None = None, **provenance: Any) -> AnnData:
    """A cell-free AnnData holding only ``adata``'s prior graph: ``var``, ``varp``, ``uns``.

    Parameters
    ----------
    adata
        AnnData with ``varp[key]`` (from :func:`add_prior`).
    key
        The prior's key (default ``"pertspectra_prior"``).
    **provenance
        Extra entries for ``uns[key]`` (e.g. ``data=`` file and ``data_sha256=``).

    Returns
    -------
    AnnData with 0 observations, ``var`` indexed by ``adata.var_names``, ``varp[key]`` and
    ``uns[key]`` (``graph_only=True`` added).
    """
    import anndata as ad
    import pandas as pd

    key = key or KEYS.prior
    if key not in adata.varp:
        msg = f"varp[{key!r}] not found; build the prior with ps.priors.add_prior first"
        raise KeyError(msg)
    out = ad.AnnData(
        X=np.zeros((0, adata.n_vars), dtype=np.float32),
        var=pd.DataFrame(index=pd.Index([str(v) for v in adata.var_names])),
    )
    out.varp[key] = adata.varp[key]
    info = _plain(dict(adata.uns.get(key, {})))
    out.uns[key] = {**info, **_plain(provenance), "graph_only": True}
    return out


def is_prior_file(adata: AnnData, *, key: str | None = None) -> bool:
    """Whether ``adata`` is a graph-only prior file (no cells, a ``varp`` prior)."""
    return adata.n_obs == 0 and (key or KEYS.prior) in adata.varp


def read_prior(
    path: str | os.PathLike,
    *,
    genes: Sequence[str] | None = None,
    key: str | None = None,
) -> tuple[sp.csr_matrix, dict[str, Any]]:
    """Read a prior graph from an ``.h5ad`` (a prior file, or data holding ``varp[key]``).

    Parameters
    ----------
    path
        File written by ``pertspectra prior`` (or any ``.h5ad`` with ``varp[key]``).
    genes
        The data's genes: the graph is re-ordered to them; its genes must be the same set.
    key
        ``varp``/``uns`` key (default ``"pertspectra_prior"``).

    Returns
    -------
    The validated graph (CSR, aligned to ``genes`` when given) and its provenance (``uns``).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not an ``.h5ad``, no graph under ``key``, other genes, or a bad graph
        (see :func:`check_prior_matrix`).
    """
    import anndata as ad
    import pandas as pd

    path = Path(path)
    key = key or KEYS.prior
    if not path.is_file():
        msg = f"prior file {path} not found; build it with `pertspectra prior`"
        raise FileNotFoundError(msg)
    try:
        adata = ad.read_h5ad(path, backed="r")
    except Exception as err:  # h5py / anndata raise their own types for a non-HDF5 file
        msg = f"prior file {path} is not a readable .h5ad ({type(err).__name__}); build it with `pertspectra prior`"
        raise ValueError(msg) from None
    try:
        if key not in adata.varp:
            msg = (
                f"prior file {path} holds no varp[{key!r}] (has {list(adata.varp)}); build it "
                "with `pertspectra prior` or name the key with --prior-key"
            )
            raise ValueError(msg)
        mat = adata.varp[key]
        names = pd.Index([str(v) for v in adata.var_names])
        info = _plain(dict(adata.uns.get(key, {})))
    finally:
        if adata.isbacked:
            adata.file.close()
    source = f"prior file {path}"
    mat = check_prior_matrix(mat, n_genes=len(names), source=source)
    if not names.is_unique:
        dup = names[names.duplicated()].unique()[:3].tolist()
        msg = (
            f"{source} has duplicated gene names (e.g. {dup}); rebuild it with `pertspectra prior`"
        )
        raise ValueError(msg)
    if genes is not None:
        want = pd.Index([str(g) for g in genes])
        if not names.equals(want):
            missing = want.difference(names)
            extra = names.difference(want)
            if len(missing) or len(extra):
                check_shared_genes(names, want, source=source, data="the data's genes")
                msg = (
                    f"{source} was built for other genes: {len(want) - len(missing)} of the "
                    f"data's {len(want)} genes are in it (missing e.g. {missing[:3].tolist()}, "
                    f"extra e.g. {extra[:3].tolist()}); rebuild it from this data with "
                    "`pertspectra prior DATA --string ... --out FILE`"
                )
                raise ValueError(msg)
            order = names.get_indexer(want)
            mat = mat[order][:, order].tocsr()
            mat.sort_indices()
    return mat, info


def write_prior(
    adata: AnnData,
    path: str | os.PathLike,
    *,
    key: str | None = None,
    overwrite: bool = False,
    inputs: tuple[str | os.PathLike, ...] = (),
    **provenance: Any,
) -> Path:
    """Write only ``adata``'s prior graph and provenance (see :func:`prior_only`), atomically.

    Parameters
    ----------
    adata
        AnnData with ``varp[key]``.
    path
        Output ``.h5ad``.
    key
        The prior's key (default ``"pertspectra_prior"``).
    overwrite
        Replace an existing file.
    inputs
        Files the output must not be.
    **provenance
        Extra entries for ``uns[key]``.

    Returns
    -------
    The path written.
    """
    from ..io._write import write_h5ad

    return write_h5ad(
        prior_only(adata, key=key, **provenance), path, overwrite=overwrite, inputs=inputs
    )
