"""One source of truth for every AnnData slot pertspectra reads or writes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Names of the AnnData slots used by pertspectra.

    ``base`` prefixes every key, so two fits can live on one AnnData.
    """

    base: str = "pertspectra"

    @property
    def uns(self) -> str:
        """``adata.uns`` entry holding settings, versions and history."""
        return self.base

    @property
    def loadings(self) -> str:
        """``adata.varm``: genes x factors, the programs' gene loadings ``W.T``."""
        return f"{self.base}_W"

    @property
    def gene_scale(self) -> str:
        """``adata.var``: the fitted gene scaling ``nu``."""
        return f"{self.base}_gene_scale"

    @property
    def prior(self) -> str:
        """``adata.varp``: the prior gene x gene graph (sparse, symmetric, zero diagonal)."""
        return f"{self.base}_prior"

    @property
    def prior_info(self) -> str:
        """``adata.uns``: provenance of the prior graph."""
        return f"{self.base}_prior"

    @property
    def perturbation_loadings(self) -> str:
        """``obsm`` of the perturbation-level AnnData: design rows' ``P`` values."""
        return f"{self.base}_P"

    @property
    def split(self) -> str:
        """``adata.obsm``: each cell's role (train/val/test, "" if not used) per evaluation fold."""
        return f"{self.base}_split"

    @property
    def target_types(self) -> str:
        """``adata.uns``: mapping perturbation token -> target type (gene, enhancer, ...)."""
        return f"{self.base}_target_types"


KEYS = Keys()

# perturbation-level (group statistics) AnnData
N_CELLS = "n_cells"
WEIGHT = "weight"
DESIGN_COLUMNS = "design_columns"
LAYER_WEIGHTED_SUM = "weighted_sum"
LAYER_SUM = "sum"
LAYER_SUM_SQUARES = "sum_squares"
STATS_UNS = "pertspectra_stats"

# design column names shared by every encoding
CTRL = "ctrl"
BASAL = "basal"
