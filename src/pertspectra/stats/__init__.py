"""Sufficient statistics of a screen: one streaming pass from cells to labels (numpy/scipy only).

In memory, backed ``.h5ad`` (chunk by chunk), or Dask arrays (``read_dask`` for ``.zarr`` /
``.h5ad`` stores, running on any ``dask.distributed`` cluster).
"""

from ._dask import read_dask
from ._group import CountsError, compute_group_stats
from ._normalize import normalize_log1p
from ._pseudobulk import from_pseudobulk
from ._signal import signal_rank, standardized_changes

__all__ = [
    "CountsError",
    "compute_group_stats",
    "from_pseudobulk",
    "normalize_log1p",
    "read_dask",
    "signal_rank",
    "standardized_changes",
]
