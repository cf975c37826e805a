"""Sufficient statistics of a screen: one streaming pass from cells to labels (numpy/scipy only)."""

from ._group import CountsError, compute_group_stats, group_labels
from ._normalize import normalize_log1p

__all__ = ["CountsError", "compute_group_stats", "group_labels", "normalize_log1p"]
