"""Shared pieces of the readers: label normalisation, unique gene names, the summary."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from pertspectra._keys import BASAL, CTRL, KEYS
from pertspectra.design import CONTROL_LABEL, DEFAULT_CONTROLS, LabelParser

from ._targets import CONTROL, EXCLUDE, resolve_target_types, target_token

logger = logging.getLogger(__name__)

#: Standard obs column written by every reader.
PERTURBATION_KEY = "perturbation"
#: ``adata.uns`` entry with the reader's summary (source, keys, exclude labels, counts).
IO_UNS = f"{KEYS.base}_io"
#: Label given to cells whose perturbation label is missing (NaN); it is an exclude label.
MISSING_LABEL = "unassigned"


def make_names_unique(names: Iterable[object], *, what: str = "var_names") -> pd.Index:
    """Make names unique the way ``AnnData.var_names_make_unique`` does (``A``, ``A-1``, ...).

    The first occurrence keeps its name; later ones get ``-1``, ``-2``... skipping names that
    already exist. Logs a warning naming the duplicated entries.
    """
    idx = pd.Index([str(n) for n in names])
    if idx.is_unique:
        return idx
    dup = idx[idx.duplicated()].unique()
    logger.warning(
        "%d %s are duplicated (e.g. %s); made unique by appending '-1', '-2', ... "
        "(as var_names_make_unique); the original names are kept in a column",
        len(dup),
        what,
        ", ".join(dup[:5]),
    )
    seen = set(idx)
    counters: dict[str, int] = {}
    out = []
    used: set[str] = set()
    for name in idx:
        if name not in used:
            out.append(name)
            used.add(name)
            continue
        k = counters.get(name, 0)
        while True:
            k += 1
            cand = f"{name}-{k}"
            if cand not in seen and cand not in used:
                break
        counters[name] = k
        out.append(cand)
        used.add(cand)
    return pd.Index(out)


def normalise_labels(
    raw: pd.Series,
    *,
    separator: str = "+",
    controls: Iterable[str] = DEFAULT_CONTROLS,
    exclude: Iterable[str] = (),
    declared_types: Mapping[str, object] | None = None,
    target_types: Mapping[str, str] | None = None,
    detect_loci: bool = True,
) -> tuple[pd.Series, dict[str, str], dict[str, Any]]:
    """Raw per-cell labels -> labels in the core's convention.

    Perturbed labels become sorted target tokens joined by ``+`` (non-gene targets renamed by
    :func:`~pertspectra.io.target_token`), control aliases become ``"ctrl"``, exclude labels
    are kept verbatim and missing labels become ``"unassigned"`` (also excluded).

    Returns
    -------
    The categorical label series (same index as ``raw``), the token -> type mapping and a
    summary dictionary.
    """
    parser = LabelParser(separator=separator, controls=tuple(controls))
    exclude_set = {str(e) for e in exclude}
    exclude_lower = {e.lower() for e in exclude_set}
    values = raw.astype(object)
    missing = values.isna().to_numpy()
    uniq = pd.unique(values[~missing])
    parsed: dict[str, tuple[str, ...] | None] = {}  # None = exclude label
    for u in uniq:
        text = str(u).strip()
        if text in exclude_set or text.lower() in exclude_lower:
            parsed[u] = None
        else:
            parsed[u] = parser.tokens(text)
    raw_tokens = sorted({t for toks in parsed.values() if toks for t in toks})
    types = resolve_target_types(
        raw_tokens, declared=declared_types, overrides=target_types, detect_loci=detect_loci
    )
    renamed = {t: target_token(t, k) for t, k in types.items()}
    _check_tokens(renamed, exclude_set | {MISSING_LABEL})
    mapping: dict[object, str] = {}
    for u, toks in parsed.items():
        if toks is None:
            mapping[u] = str(u).strip()
        elif not toks:
            mapping[u] = CONTROL_LABEL
        else:
            mapping[u] = "+".join(sorted({renamed[t] for t in toks}))
    labels = values.map(mapping)
    if missing.any():
        logger.warning(
            "%d cell(s) have no perturbation label; labelled %r (an exclude label)",
            int(missing.sum()),
            MISSING_LABEL,
        )
        labels[missing] = MISSING_LABEL
    out_types = {renamed[t]: k for t, k in types.items()}
    excluded_labels = sorted({mapping[u] for u, t in parsed.items() if t is None})
    if missing.any():
        excluded_labels.append(MISSING_LABEL)
    for lab in excluded_labels:
        out_types[lab] = EXCLUDE
    if (labels == CONTROL_LABEL).any():
        out_types[CONTROL_LABEL] = CONTROL
    labels = pd.Series(pd.Categorical(labels), index=raw.index, name=PERTURBATION_KEY)
    labels = labels.cat.remove_unused_categories()
    summary = _summarise(labels, out_types, excluded_labels)
    return labels, dict(sorted(out_types.items())), summary


def _check_tokens(renamed: Mapping[str, str], exclude: set[str]) -> None:
    reserved = {CTRL, BASAL, *exclude}
    bad = sorted(t for t in renamed.values() if t in reserved or "+" in t)
    if bad:
        msg = (
            f"perturbation token(s) {bad} contain '+' or clash with reserved names "
            f"{sorted(reserved)}; pass a different separator or rename them"
        )
        raise ValueError(msg)
    inverse: dict[str, list[str]] = {}
    for raw_tok, tok in renamed.items():
        inverse.setdefault(tok, []).append(raw_tok)
    clash = {tok: raws for tok, raws in inverse.items() if len(raws) > 1}
    if clash:
        msg = f"different targets map to the same token: {clash}"
        raise ValueError(msg)


def _summarise(labels: pd.Series, types: Mapping[str, str], excluded: list[str]) -> dict[str, Any]:
    counts = labels.value_counts()
    is_excl = labels.isin(excluded).to_numpy()
    is_ctrl = (labels == CONTROL_LABEL).to_numpy()
    n_tok = labels.astype(str).str.count(r"\+").to_numpy() + 1
    pert = ~is_excl & ~is_ctrl
    kinds = pd.Series(types).value_counts()
    return {
        "n_cells": int(labels.size),
        "n_control_cells": int(is_ctrl.sum()),
        "n_excluded_cells": int(is_excl.sum()),
        "n_single_cells": int((pert & (n_tok == 1)).sum()),
        "n_combination_cells": int((pert & (n_tok > 1)).sum()),
        "n_labels": int((counts > 0).sum()),
        "exclude_labels": list(excluded),
        "n_targets_by_type": {
            str(k): int(v) for k, v in kinds.items() if k not in (CONTROL, EXCLUDE)
        },
    }


def describe(summary: Mapping[str, Any]) -> str:
    """One line describing a reader summary."""
    types = ", ".join(f"{v} {k}" for k, v in summary.get("n_targets_by_type", {}).items())
    excl = summary.get("exclude_labels") or []
    return (
        f"{summary['n_cells']} cells: {summary['n_control_cells']} control, "
        f"{summary['n_single_cells']} single, {summary['n_combination_cells']} combination, "
        f"{summary['n_excluded_cells']} excluded ({', '.join(excl) or 'none'}); "
        f"targets: {types or 'none'}"
    )
