"""Harmonize gene identifiers (symbols, Ensembl ids, aliases, spreadsheet dates) to symbols.

Each name is resolved in this order and the first rule that applies gives its status:

1. ``exact``: a current symbol;
2. ``ensembl``: an Ensembl gene id, with or without version (``ENSG00000121410.12``);
3. ``mangled``: a spreadsheet date such as ``1-Mar`` or ``Sep-02``, restored to candidate
   names (``MARCH1``, ``MARCHF1``, ``SEPT2``, ``SEPTIN2``): current symbols among them win,
   otherwise their aliases;
4. ``alias``: a previous symbol or synonym of exactly one gene. When an alias belongs to
   several genes and exactly one of them is its renamed form (same stem extended, same number:
   ``SEPT2`` -> ``SEPTIN2`` rather than ``SEPTIN6``; ``MARCH1`` -> ``MARCHF1``), that one is
   taken: this is how the nomenclature committee renamed whole families;
5. otherwise ``ambiguous`` (several candidates, listed) or ``unmapped``. Nothing is guessed.

Gene tables: NCBI ``gene_info`` (``#tax_id GeneID Symbol LocusTag Synonyms dbXrefs ...``),
tables with ``symbol`` and ``ensembl_gene_ids`` columns (as exported from Bioconductor's
``org.Hs.eg.db``), and alias tables with ``alias`` and ``symbol`` columns.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ._files import read_header, split_header

logger = logging.getLogger(__name__)

STATUSES = ("exact", "ensembl", "mangled", "alias", "ambiguous", "unmapped")

_ENSEMBL = re.compile(r"^(ENS[A-Z]*G\d{6,})(?:\.\d+)?$")
_MONTHS = {
    "jan": ("JAN",),
    "feb": ("FEB",),
    "mar": ("MARCH", "MARCHF", "MAR"),
    "apr": ("APR", "APRIL"),
    "may": ("MAY",),
    "jun": ("JUN",),
    "jul": ("JUL",),
    "aug": ("AUG",),
    "sep": ("SEPT", "SEPTIN", "SEP"),
    "oct": ("OCT",),
    "nov": ("NOV",),
    "dec": ("DEC",),
}
_DAY_MONTH = re.compile(r"^0?(\d{1,2})-([A-Za-z]{3})$")
_MONTH_DAY = re.compile(r"^([A-Za-z]{3})-0?(\d{1,2})$")
_STEM = re.compile(r"^([A-Za-z]+)(\d+)$")


@dataclass
class GeneLookup:
    """Current symbols, Ensembl id -> symbols and alias -> symbols."""

    symbols: set[str] = field(default_factory=set)
    ensembl: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    aliases: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def update(self, other: GeneLookup) -> None:
        """Merge ``other`` into this lookup."""
        self.symbols |= other.symbols
        for k, v in other.ensembl.items():
            self.ensembl[k] |= v
        for k, v in other.aliases.items():
            self.aliases[k] |= v


def _read_table(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    _cols, sep = split_header(read_header(source))
    return pd.read_csv(source, sep=sep, dtype=str, keep_default_na=False, quoting=3)


def _split_multi(value: str, seps: str) -> list[str]:
    return [v for v in re.split(f"[{re.escape(seps)}]", value) if v and v != "-"]


def read_gene_table(
    source: str | Path | pd.DataFrame, *, tax_id: int | str | None = None
) -> GeneLookup:
    """Load a gene table of any supported format into a :class:`GeneLookup`.

    Parameters
    ----------
    source
        NCBI ``gene_info`` file, a genes table (``symbol``, ``ensembl_gene_ids``), or an alias
        table (``alias``, ``symbol``), as path or DataFrame.
    tax_id
        Keep only this species of a multi-species ``gene_info`` file (e.g. 9606).
    """
    df = _read_table(source)
    df.columns = [str(c).lstrip("#") for c in df.columns]
    look = GeneLookup()
    if {"Symbol", "Synonyms", "dbXrefs"} <= set(df.columns):
        if tax_id is not None and "tax_id" in df.columns:
            df = df[df["tax_id"].astype(str) == str(tax_id)]
        sym = df["Symbol"].astype(str)
        look.symbols.update(sym)
        for s, syn, xref in zip(
            sym, df["Synonyms"].astype(str), df["dbXrefs"].astype(str), strict=True
        ):
            for a in _split_multi(syn, "|"):
                look.aliases[a].add(s)
            for x in _split_multi(xref, "|"):
                if x.startswith("Ensembl:"):
                    look.ensembl[x.split(":", 1)[1]].add(s)
        return look
    if {"alias", "symbol"} <= set(df.columns):
        for a, s in zip(df["alias"].astype(str), df["symbol"].astype(str), strict=True):
            if a and s:
                look.aliases[a].add(s)
        return look
    if "symbol" in df.columns:
        sym = df["symbol"].astype(str)
        look.symbols.update(s for s in sym if s)
        ens_col = next(
            (c for c in ("ensembl_gene_ids", "ensembl_id", "ensembl") if c in df.columns), None
        )
        if ens_col is not None:
            for s, ens in zip(sym, df[ens_col].astype(str), strict=True):
                for e in _split_multi(ens, ",;| "):
                    look.ensembl[e].add(s)
        return look
    msg = (
        "unrecognised gene table: expected NCBI gene_info columns (Symbol, Synonyms, dbXrefs), "
        f"or 'symbol' [+ 'ensembl_gene_ids'], or 'alias' + 'symbol'; got {list(df.columns)[:6]}"
    )
    raise ValueError(msg)


def gene_lookup(
    *,
    genes_table: str | Path | pd.DataFrame | None = None,
    aliases_table: str | Path | pd.DataFrame | None = None,
    gene_info: str | Path | pd.DataFrame | None = None,
    tax_id: int | str | None = None,
) -> GeneLookup:
    """Merge the given gene tables into one :class:`GeneLookup`."""
    look = GeneLookup()
    given = [t for t in (gene_info, genes_table, aliases_table) if t is not None]
    if not given:
        msg = "give at least one gene table (gene_info, genes_table or aliases_table)"
        raise ValueError(msg)
    for t in given:
        look.update(read_gene_table(t, tax_id=tax_id))
    return look


def _renamed_form(alias: str, candidates: set[str]) -> str | None:
    m = _STEM.match(alias)
    if not m:
        return None
    stem, num = m.group(1).upper(), m.group(2)
    hits = []
    for c in candidates:
        mc = _STEM.match(c)
        if mc and mc.group(2) == num and mc.group(1).upper().startswith(stem):
            hits.append(c)
    return hits[0] if len(hits) == 1 else None


def _resolve_alias(name: str, look: GeneLookup) -> tuple[str | None, list[str]]:
    cands = look.aliases.get(name) or look.aliases.get(name.upper()) or set()
    if len(cands) == 1:
        return next(iter(cands)), []
    if len(cands) > 1:
        pick = _renamed_form(name, cands)
        return pick, [] if pick else sorted(cands)
    return None, []


def _demangle(name: str) -> list[str] | None:
    m = _DAY_MONTH.match(name)
    if m:
        day, mon = m.group(1), m.group(2).lower()
    else:
        m = _MONTH_DAY.match(name)
        if not m:
            return None
        mon, day = m.group(1).lower(), m.group(2)
    if mon not in _MONTHS:
        return None
    return [f"{p}{int(day)}" for p in _MONTHS[mon]]


def _resolve(name: str, look: GeneLookup) -> tuple[str | None, str, list[str]]:
    if name in look.symbols:
        return name, "exact", []
    m = _ENSEMBL.match(name)
    if m:
        cands = look.ensembl.get(m.group(1), set())
        if len(cands) == 1:
            return next(iter(cands)), "ensembl", []
        return None, ("ambiguous" if cands else "unmapped"), sorted(cands)
    restored = _demangle(name)
    if restored is not None:
        exact = sorted({c for c in restored if c in look.symbols})
        if not exact:
            found: set[str] = set()
            amb: set[str] = set()
            for c in restored:
                sym, many = _resolve_alias(c, look)
                found |= {sym} if sym else set()
                amb |= set(many)
            exact = sorted(found) if found else sorted(amb)
        if len(exact) == 1:
            return exact[0], "mangled", []
        if exact:
            return None, "ambiguous", exact
    sym, many = _resolve_alias(name, look)
    if sym is not None:
        return sym, "alias", []
    if many:
        return None, "ambiguous", many
    return None, "unmapped", []


def harmonize_genes(
    names: Iterable[str],
    *,
    genes_table: str | Path | pd.DataFrame | None = None,
    aliases_table: str | Path | pd.DataFrame | None = None,
    gene_info: str | Path | pd.DataFrame | None = None,
    tax_id: int | str | None = None,
    lookup: GeneLookup | None = None,
) -> pd.DataFrame:
    """Map gene names to current symbols, reporting how each was mapped.

    Parameters
    ----------
    names
        Gene names: symbols, Ensembl gene ids (versioned or not), previous symbols or aliases,
        or spreadsheet-mangled names such as ``1-Mar``.
    genes_table
        Table with ``symbol`` and ``ensembl_gene_ids`` (comma-separated) columns.
    aliases_table
        Table with ``alias`` and ``symbol`` columns.
    gene_info
        NCBI ``gene_info`` file (symbols, ``|``-separated synonyms, Ensembl in ``dbXrefs``).
    tax_id
        Species filter for a multi-species ``gene_info``.
    lookup
        A prepared :class:`GeneLookup` (instead of the tables).

    Returns
    -------
    DataFrame with one row per input name, in input order: ``input``, ``symbol`` (the current
    symbol, empty when ambiguous or unmapped), ``status`` (one of ``exact``, ``ensembl``,
    ``mangled``, ``alias``, ``ambiguous``, ``unmapped``) and ``candidates`` (``;``-joined
    symbols for ambiguous names).
    """
    if lookup is None:
        lookup = gene_lookup(
            genes_table=genes_table, aliases_table=aliases_table, gene_info=gene_info, tax_id=tax_id
        )
    rows = []
    cache: dict[str, tuple[str | None, str, list[str]]] = {}
    for raw in names:
        name = str(raw).strip()
        if name not in cache:
            cache[name] = _resolve(name, lookup)
        sym, status, cands = cache[name]
        rows.append((str(raw), sym or "", status, ";".join(cands)))
    out = pd.DataFrame(rows, columns=["input", "symbol", "status", "candidates"])
    out["status"] = pd.Categorical(out["status"], categories=list(STATUSES))
    counts = out["status"].value_counts()
    logger.info("gene names: %s", ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return out
