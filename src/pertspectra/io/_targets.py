"""Target types and the token form of non-gene targets.

A perturbation token names what a guide targets. Most targets are genes (a promoter/TSS
counts as the gene it drives), but CRISPRi screens also target enhancers, which are often
named after a nearby gene (Schraivogel et al. call the GATA1 enhancer ``GATA1``). Such a
token must never be confused with the gene of the same name, so every non-gene token is
renamed to ``"<name>_<type>"`` (e.g. ``GATA1`` enhancer -> ``GATA1_enhancer``, Gasperini's
``chr3.5275_top_two`` -> ``chr3.5275_top_two_enhancer``). HGNC gene symbols never contain
``_``, the suffix never contains the ``+`` separator, so the renamed form cannot collide with
a gene or split a combination. The mapping token -> type is stored in
``adata.uns["pertspectra_target_types"]``: ``"gene"``, ``"enhancer"`` (or another declared
type), ``"control"`` for the control label ``ctrl`` and ``"exclude"`` for labels that are
neither perturbations nor controls (e.g. sceptre's ``none_detected``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

logger = logging.getLogger(__name__)

GENE = "gene"
ENHANCER = "enhancer"
CONTROL = "control"
EXCLUDE = "exclude"

#: Declared target types that count as a gene target.
_GENE_ALIASES = frozenset({"gene", "promoter", "tss", "gene_tss", "pos_cntrl", "positive_control"})
_ENHANCER_ALIASES = frozenset({"enhancer", "enh", "candidate_enhancer", "cre", "distal"})

#: Genomic-locus names such as Gasperini's ``chr3.5275_top_two`` or ``chr8:1234-5678``.
LOCUS_PATTERN = re.compile(r"^chr([0-9]{1,2}|X|Y|M|MT)[.:_-][0-9]", re.IGNORECASE)


def normalise_target_type(kind: object) -> str:
    """Map a declared target type (``"promoter"``, ``"Enhancer"``...) onto our vocabulary.

    Promoters and TSS targets are ``"gene"``; enhancer spellings are ``"enhancer"``; any other
    type is kept lower-cased with spaces and ``+`` replaced by ``_``.
    """
    text = str(kind).strip().lower()
    if not text:
        msg = "target type is an empty string"
        raise ValueError(msg)
    if text in _GENE_ALIASES:
        return GENE
    if text in _ENHANCER_ALIASES:
        return ENHANCER
    return re.sub(r"[\s+]+", "_", text)


def is_locus_name(token: str) -> bool:
    """Whether ``token`` names a genomic locus (``chr3.5275_top_two``) rather than a gene."""
    return bool(LOCUS_PATTERN.match(token))


def target_token(name: str, kind: str) -> str:
    """The token under which target ``name`` of type ``kind`` appears in labels.

    Gene targets keep their name; any other type gets the suffix ``_<kind>`` (added once).

    Examples
    --------
    >>> target_token("GATA1", "enhancer")
    'GATA1_enhancer'
    >>> target_token("GATA1", "gene")
    'GATA1'
    """
    if kind == GENE:
        return name
    suffix = f"_{kind}"
    return name if name.endswith(suffix) else f"{name}{suffix}"


def resolve_target_types(
    tokens: list[str],
    *,
    declared: Mapping[str, object] | None = None,
    overrides: Mapping[str, str] | None = None,
    detect_loci: bool = True,
) -> dict[str, str]:
    """Type of each raw target token.

    Parameters
    ----------
    tokens
        Raw target names as they appear in the labels.
    declared
        Types stored with the data (e.g. ``uns["target_type"]`` of the Schraivogel screen).
    overrides
        Types given by the user; win over ``declared``.
    detect_loci
        Type locus-named tokens (``chr3.5275_top_two``) without a declared type as enhancers.

    Returns
    -------
    Raw token -> normalised type; tokens without information are ``"gene"``.
    """
    declared = dict(declared or {})
    overrides = dict(overrides or {})
    out: dict[str, str] = {}
    for tok in tokens:
        if tok in overrides:
            out[tok] = normalise_target_type(overrides[tok])
        elif tok in declared:
            out[tok] = normalise_target_type(declared[tok])
        elif detect_loci and is_locus_name(tok):
            out[tok] = ENHANCER
        else:
            out[tok] = GENE
    unused = sorted(set(overrides) - set(tokens))
    if unused:
        logger.warning("target_types given for token(s) not in the labels: %s", unused[:10])
    return out
