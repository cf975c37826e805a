"""Perturbation-label conventions of public .h5ad screens, normalised to the core's.

=============  ========================  ==========================  ===========================
convention     label column              control                     combinations / notes
=============  ========================  ==========================  ===========================
``scperturb``  ``perturbation``          ``control``                 ``_`` (``+`` if present)
``gears``      ``condition``             ``ctrl``                    ``A+B``, ``A+ctrl``
``cpa``        ``condition``             ``ctrl``                    as GEARS
``replogle``   ``gene``                  ``non-targeting``           singles
``sceptre``    ``perturbation``/         ``non-targeting``           ``+``; ``none_detected`` is
               ``target``                                            excluded, not a control
``pertspectra``  ``perturbation``        ``ctrl``                    output of these readers
=============  ========================  ==========================  ===========================

Detection (``convention="auto"``) looks at values, not only column names: Datlinger's
scPerturb file has ``obs["condition"]`` = stimulated/unstimulated, which is a covariate, so a
``condition`` column counts as GEARS/CPA only when its labels use ``ctrl``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from pertspectra._keys import KEYS
from pertspectra.design import DEFAULT_CONTROLS

from ._common import IO_UNS, PERTURBATION_KEY, describe, make_names_unique, normalise_labels

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

Convention = Literal["auto", "scperturb", "gears", "cpa", "replogle", "sceptre", "pertspectra"]

#: Columns that may hold gene symbols when ``var_names`` are Ensembl ids (first found wins).
SYMBOL_COLUMNS = ("gene_name", "feature_name", "gene_symbol", "gene_symbols", "symbol", "gene")
#: Labels that mean "no usable perturbation assignment" (never controls).
DEFAULT_EXCLUDE = ("none_detected",)


@dataclass(frozen=True)
class _Spec:
    keys: tuple[str, ...]
    controls: tuple[str, ...]
    separator: str | None  # None: decided from the labels
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE


_SPECS: dict[str, _Spec] = {
    "scperturb": _Spec(("perturbation",), ("control", *DEFAULT_CONTROLS), None),
    "gears": _Spec(("condition",), DEFAULT_CONTROLS, "+"),
    "cpa": _Spec(("condition",), DEFAULT_CONTROLS, "+"),
    "replogle": _Spec(("gene",), DEFAULT_CONTROLS, "+"),
    "sceptre": _Spec(("perturbation", "target"), DEFAULT_CONTROLS, "+"),
    "pertspectra": _Spec((PERTURBATION_KEY,), DEFAULT_CONTROLS, "+"),
}


def read_screen(
    data: str | Path | AnnData,
    *,
    convention: Convention = "auto",
    perturbation_key: str | None = None,
    separator: str | None = None,
    controls: Iterable[str] | None = None,
    exclude_labels: Iterable[str] | None = None,
    target_types: Mapping[str, str] | None = None,
    symbols: bool = True,
) -> AnnData:
    """Read a screen distributed as .h5ad and normalise its labels to the core's convention.

    Parameters
    ----------
    data
        Path of an ``.h5ad`` file or an AnnData; neither is modified (an AnnData is copied).
    convention
        Label convention of the source (see the module table); ``"auto"`` detects it from the
        obs columns and their values.
    perturbation_key
        obs column with the labels; default: the convention's column.
    separator
        String joining the targets of a combination in the source labels. Default: ``+``;
        for scPerturb ``+`` if any label contains it, otherwise ``_`` (scPerturb joins
        combinations such as ``FOXA1_KLF1`` with ``_``).
    controls
        Control labels/tokens; default: the convention's (``ctrl``, ``control``,
        ``non-targeting`` and the other aliases of :data:`pertspectra.design.DEFAULT_CONTROLS`).
    exclude_labels
        Labels that are neither perturbations nor controls; default ``("none_detected",)``.
        They are kept verbatim in ``obs["perturbation"]``, typed ``"exclude"`` and listed in
        ``uns["pertspectra_io"]["exclude_labels"]``: pass that list as ``exclude_labels`` of
        :func:`pertspectra.design.canonical_labels`.
    target_types
        Target name (as in the source) -> type (``"gene"``, ``"promoter"``, ``"enhancer"``...);
        wins over a ``uns["target_type"]`` mapping stored in the file. Targets without a type
        are genes, except genomic-locus names such as ``chr3.5275_top_two`` (enhancers).
        Non-gene targets are renamed ``<name>_<type>`` (``GATA1_enhancer``) so that they stay
        distinct from the gene of the same name; promoters count as genes.
    symbols
        When ``var_names`` are Ensembl ids and a symbol column (``gene_name``,
        ``feature_name``...) exists, use the symbols as ``var_names`` (made unique, with a
        warning) and keep the ids in ``var["gene_ids"]``.

    Returns
    -------
    AnnData with ``obs["perturbation"]`` (categorical: ``"A"``, ``"A+B"`` with sorted tokens,
    ``"ctrl"``, or an exclude label; unused categories dropped), ``obs["perturbation_raw"]``
    when the source labels were in ``obs["perturbation"]``,
    ``uns["pertspectra_target_types"]`` (token -> ``"gene"``/``"enhancer"``/...,
    ``"control"``, ``"exclude"``) and ``uns["pertspectra_io"]`` (convention, key, separator,
    exclude labels, cell counts); the summary is also logged.
    """
    import anndata as ad

    if isinstance(data, str | Path):
        adata = ad.read_h5ad(data)
    elif isinstance(data, ad.AnnData):
        adata = data.copy()
    else:
        msg = f"data must be a path or an AnnData, got {type(data).__name__}"
        raise TypeError(msg)

    conv, key = detect_convention(adata, convention=convention, perturbation_key=perturbation_key)
    spec = _SPECS[conv]
    raw = adata.obs[key]
    if isinstance(raw.dtype, pd.CategoricalDtype):
        raw = raw.cat.remove_unused_categories()
        adata.obs[key] = raw
    ctrl = tuple(controls) if controls is not None else spec.controls
    excl = tuple(exclude_labels) if exclude_labels is not None else spec.exclude
    if conv == "pertspectra" and exclude_labels is None:
        excl = tuple(dict(adata.uns.get(IO_UNS, {})).get("exclude_labels", spec.exclude))
    sep = separator or spec.separator or _guess_separator(raw, ctrl, excl)
    declared = adata.uns.get("target_type")
    if conv == "pertspectra":
        declared = None  # tokens are already renamed; their types are kept below
    labels, types, summary = normalise_labels(
        raw,
        separator=sep,
        controls=ctrl,
        exclude=excl,
        declared_types=declared if isinstance(declared, Mapping) else None,
        target_types=target_types,
    )
    if conv == "pertspectra":
        old = dict(adata.uns.get(KEYS.target_types, {}))
        types = {t: old.get(t, k) for t, k in types.items()}
    if key == PERTURBATION_KEY and conv != "pertspectra":
        adata.obs["perturbation_raw"] = adata.obs[key]
    adata.obs[PERTURBATION_KEY] = labels.to_numpy()
    adata.obs[PERTURBATION_KEY] = adata.obs[PERTURBATION_KEY].astype("category")
    if symbols:
        _symbols_as_var_names(adata)
    summary.update(convention=conv, perturbation_key=key, separator=sep)
    adata.uns[KEYS.target_types] = types
    adata.uns[IO_UNS] = summary
    logger.info("read screen (%s, obs[%r]): %s", conv, key, describe(summary))
    return adata


def detect_convention(
    adata: AnnData,
    *,
    convention: Convention = "auto",
    perturbation_key: str | None = None,
) -> tuple[str, str]:
    """The label convention of ``adata`` and the obs column holding its labels.

    Raises
    ------
    ValueError
        For an unknown convention, a missing column, or when nothing can be detected.
    """
    obs = adata.obs
    if convention != "auto" and convention not in _SPECS:
        msg = f"unknown convention {convention!r}; choose one of {['auto', *_SPECS]}"
        raise ValueError(msg)
    if perturbation_key is not None and perturbation_key not in obs:
        msg = f"obs has no column {perturbation_key!r}; obs columns: {list(obs.columns)}"
        raise ValueError(msg)
    if convention != "auto":
        key = perturbation_key or next((k for k in _SPECS[convention].keys if k in obs), None)
        if key is None:
            msg = (
                f"convention {convention!r} expects an obs column "
                f"{' or '.join(map(repr, _SPECS[convention].keys))}; obs columns: "
                f"{list(obs.columns)}; pass perturbation_key="
            )
            raise ValueError(msg)
        return convention, key
    if perturbation_key is not None:
        return _convention_of_values(obs[perturbation_key], adata), perturbation_key
    if KEYS.target_types in adata.uns and PERTURBATION_KEY in obs:
        return "pertspectra", PERTURBATION_KEY
    if "condition" in obs and _looks_like_gears(obs["condition"]):
        return ("cpa" if "cov_drug_dose_name" in obs or "dose_val" in obs else "gears"), "condition"
    if "gene" in obs and _has_any(obs["gene"], ("non-targeting",)):
        return "replogle", "gene"
    for key in ("perturbation", "target"):
        if key in obs:
            return _convention_of_values(obs[key], adata), key
    msg = (
        "cannot detect the perturbation column: none of 'perturbation', 'condition' (with "
        "ctrl labels), 'gene' (with non-targeting), 'target' is in obs "
        f"{list(obs.columns)}; pass perturbation_key= and convention="
    )
    raise ValueError(msg)


def _values(col: pd.Series) -> pd.Index:
    vals = col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else pd.unique(col)
    return pd.Index([str(v) for v in vals if not (isinstance(v, float) and np.isnan(v))])


def _has_any(col: pd.Series, names: Iterable[str]) -> bool:
    low = {n.lower() for n in names}
    return bool(_values(col).str.lower().isin(low).any())


def _looks_like_gears(col: pd.Series) -> bool:
    vals = _values(col)
    if vals.empty:
        return False
    tokens = {t.strip().lower() for v in vals for t in v.split("+")}
    return "ctrl" in tokens


def _convention_of_values(col: pd.Series, adata: AnnData) -> str:
    if _looks_like_gears(col):
        return "gears"
    if _has_any(col, DEFAULT_EXCLUDE) or "target_type" in adata.uns:
        return "sceptre"
    if _has_any(col, ("control",)):
        return "scperturb"
    if _has_any(col, ("non-targeting",)):
        return "sceptre"
    logger.info("no known control label in the labels; assuming the scPerturb convention")
    return "scperturb"


def _guess_separator(raw: pd.Series, controls: Iterable[str], exclude: Iterable[str]) -> str:
    vals = _values(raw)
    skip = {c.lower() for c in controls} | {e.lower() for e in exclude}
    vals = vals[~vals.str.lower().isin(skip)]
    if vals.str.contains("+", regex=False).any():
        return "+"
    if vals.str.contains("_", regex=False).any():
        logger.info("labels contain '_' and no '+': splitting combinations on '_' (scPerturb)")
        return "_"
    return "+"


def _symbols_as_var_names(adata: AnnData) -> None:
    names = pd.Index(adata.var_names.astype(str))
    if names.empty or names.str.startswith("ENS").mean() < 0.5:
        return
    col = next((c for c in SYMBOL_COLUMNS if c in adata.var), None)
    if col is None:
        logger.info("var_names look like Ensembl ids and no symbol column exists; kept ids")
        return
    sym = adata.var[col].astype(object)
    empty = sym.isna() | (sym.astype(str).str.strip() == "")
    sym = sym.where(~empty, pd.Series(names, index=adata.var.index)).astype(str)
    if empty.any():
        logger.warning(
            "%d gene(s) have no symbol in var[%r]; kept their ids", int(empty.sum()), col
        )
    if "gene_ids" not in adata.var:
        adata.var["gene_ids"] = names.to_numpy()
    adata.var_names = make_names_unique(sym, what="gene symbols")
    logger.info("var_names set to the symbols of var[%r]; ids kept in var['gene_ids']", col)
