"""What a results folder holds, read back without computing anything.

A results folder is what ``pertspectra run`` writes (any part of it may be missing)::

    DIR/manifest.json     command line, versions, seeds, input checksums, stage timings
    DIR/prior.h5ad        the data with its prior graph (``pertspectra prior``)
    DIR/model/            the fit (``pertspectra fit``)
    DIR/evaluate/         the scorecard (``pertspectra evaluate``)
    DIR/programs/         programs and perturbation -> programs (``pertspectra programs``)
    DIR/similarity/       similarity, clusters, benchmarks (``pertspectra similarity``)

A model fitted under several conditions (``DIR/model`` a condition model folder) writes the same
files with a leading ``condition`` column (and ``block`` for programs), plus
``similarity/condition_agreement.csv``; they are read back as stored (the similarity matrix and
clusters indexed by (condition, label)), and :mod:`pertspectra.report._conditions` cuts them per
condition.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._keys import KEYS

if TYPE_CHECKING:
    from ..evaluate import Scorecard
    from ..model import ConditionModel, FittedModel

logger = logging.getLogger(__name__)

#: The stage folders and files of a results folder, in pipeline order.
STAGES = {
    "prior": "prior.h5ad",
    "fit": "model",
    "evaluate": "evaluate",
    "programs": "programs",
    "similarity": "similarity",
}
MANIFEST = "manifest.json"
REPORT = "report.html"


@dataclass
class Results:
    """The stored results of one folder (``None`` where a stage has not run)."""

    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    prior: dict[str, Any] | None = None
    prior_degrees: np.ndarray | None = None
    model: FittedModel | ConditionModel | None = None
    scorecard: Scorecard | None = None
    programs: dict[str, Any] | None = None
    similarity: dict[str, Any] | None = None

    @property
    def stages(self) -> list[str]:
        """Stages whose results are present."""
        present = {
            "prior": self.prior is not None,
            "fit": self.model is not None,
            "evaluate": self.scorecard is not None,
            "programs": self.programs is not None,
            "similarity": self.similarity is not None,
        }
        return [name for name, ok in present.items() if ok]


def _csv(path: Path, **kwargs: Any) -> pd.DataFrame | None:
    return pd.read_csv(path, **kwargs) if path.is_file() else None


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _stacked(path: Path) -> bool:
    """Whether the CSV ``path`` was written per condition (its first column is ``condition``)."""
    with path.open() as fh:
        return fh.readline().split(",", 1)[0].strip() == "condition"


def _labelled(path: Path) -> pd.DataFrame | None:
    """A table indexed by label, or by (condition, label) when written per condition."""
    if not path.is_file():
        return None
    index: list[int] | int = [0, 1] if _stacked(path) else 0
    table = pd.read_csv(path, index_col=index, dtype={"label": str, "condition": str})
    idx = table.index
    table.index = pd.MultiIndex.from_arrays(
        [idx.get_level_values(i).astype(str) for i in range(idx.nlevels)], names=idx.names
    ) if idx.nlevels > 1 else idx.astype(str)  # fmt: skip
    table.columns = table.columns.astype(str)
    return table


def _read_prior(path: Path) -> tuple[dict[str, Any] | None, np.ndarray | None]:
    import anndata as ad
    import scipy.sparse as sp

    adata = ad.read_h5ad(path, backed="r")
    try:
        info = adata.uns.get(KEYS.prior_info)
        info = {
            k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in dict(info or {}).items()
        }
        degrees = None
        if KEYS.prior in adata.varp:
            graph = sp.csr_matrix(adata.varp[KEYS.prior])
            graph.setdiag(0)
            graph.eliminate_zeros()
            degrees = np.diff(graph.indptr)
    finally:
        adata.file.close()
    return (info or None), degrees


def collect(path: str | os.PathLike) -> Results:
    """Read what a results folder holds.

    Parameters
    ----------
    path
        A folder written by ``pertspectra run`` (or assembled from the outputs of ``fit``,
        ``evaluate``, ``programs`` and ``similarity`` under the names of :data:`STAGES`).

    Returns
    -------
    :class:`Results`; stages that are absent are ``None``.

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a folder or holds none of the stages' outputs.
    """
    from ..evaluate import Scorecard
    from ..model import ConditionModel, is_condition_model, load_model

    path = Path(path)
    if not path.is_dir():
        msg = f"{path} is not a folder"
        raise FileNotFoundError(msg)
    res = Results(path=path, manifest=_json(path / MANIFEST))
    if (path / STAGES["prior"]).is_file():
        res.prior, res.prior_degrees = _read_prior(path / STAGES["prior"])
    if (path / STAGES["fit"] / "model.json").is_file():
        folder = path / STAGES["fit"]
        res.model = (
            ConditionModel.load(folder) if is_condition_model(folder) else load_model(folder)
        )
    if (path / STAGES["evaluate"] / "metrics.csv").is_file():
        res.scorecard = Scorecard.read(path / STAGES["evaluate"])
    folder = path / STAGES["programs"]
    if (folder / "diagnostics.csv").is_file():
        res.programs = {
            "genes": _csv(folder / "programs.csv"),
            "terms": _csv(folder / "program_terms.csv"),
            "perturbations": _csv(
                folder / "perturbation_programs.csv", dtype={"label": str, "condition": str}
            ),
            "diagnostics": _csv(folder / "diagnostics.csv", index_col=0),
            "recovery": _csv(folder / "recovery.csv"),
            "recovery_summary": _csv(folder / "recovery_summary.csv"),
            "settings": _json(folder / "settings.json"),
        }
    folder = path / STAGES["similarity"]
    if (folder / "similarity.csv").is_file():
        sim = _labelled(folder / "similarity.csv")
        clusters = _labelled(folder / "clusters.csv")
        res.similarity = {
            "similarity": sim,
            "clusters": clusters,
            "cluster_terms": _csv(folder / "cluster_terms.csv"),
            "benchmark": _csv(folder / "benchmark.csv"),
            "pr_curves": _csv(folder / "pr_curves.csv"),
            "settings": _json(folder / "settings.json"),
            "agreement": _csv(folder / "condition_agreement.csv", dtype={"label": str}),
        }
    if not res.stages:
        msg = (
            f"{path} holds no results (none of {', '.join(STAGES.values())}); "
            "run `pertspectra run` first"
        )
        raise FileNotFoundError(msg)
    return res
