"""Gene-set libraries: GMT files and Gene Ontology from Bioconductor OrgDb / GO.db SQLite.

A gene set annotated to a GO term ``t`` also belongs to every ancestor of ``t`` (true-path
rule). OrgDb files ship this propagation in ``go_<ns>_all``; when that table is missing or
empty (a small test database, a hand-made one), ancestors are computed from GO.db's
``go_<ns>_parents`` over all relationship types, which reproduces ``go_bp_all`` of
``org.Hs.eg.db`` 3.16. Every species with an ``org.*.eg.db`` package shares this layout.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

import pandas as pd

from ._files import open_text

logger = logging.getLogger(__name__)

Namespace = Literal["BP", "MF", "CC"]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _gmt_genes(fields: list[str]) -> list[str]:
    # Enrichr's weighted form "GENE,1.0": every field is one name and one number
    if fields and all(f.count(",") == 1 and _is_number(f.split(",")[1]) for f in fields if f):
        genes = [f.split(",")[0] for f in fields]
    else:
        genes = [g for f in fields for g in f.split(",")]
    return [g.strip() for g in genes if g.strip()]


def filter_gene_sets(
    sets: Mapping[str, Iterable[str]],
    *,
    min_size: int = 1,
    max_size: int | None = None,
    universe: Iterable[str] | None = None,
) -> dict[str, list[str]]:
    """Restrict gene sets to ``universe`` (if given), then keep those of allowed size."""
    keep = None if universe is None else set(map(str, universe))
    out = {}
    for name, genes in sets.items():
        g = list(dict.fromkeys(x for x in genes if keep is None or x in keep))
        if len(g) >= min_size and (max_size is None or len(g) <= max_size):
            out[name] = g
    return out


def gene_sets_to_frame(sets: Mapping[str, Iterable[str]]) -> pd.DataFrame:
    """Tidy ``source`` (set name), ``target`` (gene) DataFrame of gene sets."""
    rows = [(name, g) for name, genes in sets.items() for g in genes]
    return pd.DataFrame(rows, columns=["source", "target"])


def read_gmt(
    path: str | Path,
    *,
    min_size: int = 1,
    max_size: int | None = None,
    universe: Iterable[str] | None = None,
) -> dict[str, list[str]]:
    """Read a GMT gene-set file (possibly gzipped).

    Each line is ``name<TAB>description<TAB>gene<TAB>gene...``. Gene fields holding several
    comma-separated genes and Enrichr's ``GENE,weight`` form are accepted; a set named twice is
    merged.

    Parameters
    ----------
    path
        GMT file.
    min_size, max_size
        Keep sets with this many genes (after restricting to ``universe``).
    universe
        Keep only these genes (e.g. ``adata.var_names``) before the size filter.

    Returns
    -------
    Dict set name -> genes (file order, de-duplicated); :func:`gene_sets_to_frame` gives the
    tidy ``source``, ``target`` form.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"file not found: {path}"
        raise FileNotFoundError(msg)
    sets: dict[str, list[str]] = {}
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) == 2 and "," in fields[1]:  # name<TAB>gene,gene,... (no description)
                fields = [fields[0], "", fields[1]]
            elif len(fields) == 1 and "," in fields[0]:  # a comma-separated line
                fields = fields[0].split(",")
            if len(fields) < 3:
                logger.warning("%s line %d has no genes; skipped", path, lineno)
                continue
            name = fields[0].strip()
            genes = _gmt_genes(fields[2:])
            if name in sets:
                logger.warning("%s: gene set %r appears twice; merged", path, name)
                sets[name] = list(dict.fromkeys([*sets[name], *genes]))
            else:
                sets[name] = list(dict.fromkeys(genes))
    if not sets:
        msg = f"{path} holds no gene sets (expected GMT: name, description, genes, tab-separated)"
        raise ValueError(msg)
    out = filter_gene_sets(sets, min_size=min_size, max_size=max_size, universe=universe)
    logger.info("%s: %d of %d gene sets kept", path, len(out), len(sets))
    return out


def _connect(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    if not path.is_file():
        msg = f"file not found: {path}"
        raise FileNotFoundError(msg)
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _tables(con: sqlite3.Connection) -> set[str]:
    rows = con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    return {r[0] for r in rows}


def _relationship(name: str) -> str:
    low = str(name).strip().lower().replace("_", " ")
    return "isa" if low in ("is a", "isa") else low


def _ancestors(
    godb: sqlite3.Connection, ns: str, relationships: Iterable[str] | None
) -> dict[str, frozenset[str]]:
    table = f"go_{ns}_parents"
    if table not in _tables(godb):
        msg = f"GO.db has no table {table}"
        raise ValueError(msg)
    sql = (
        f"SELECT c.go_id, p.go_id, r.relationship_type FROM {table} r "
        "JOIN go_term c ON c._id = r._id JOIN go_term p ON p._id = r._parent_id"
    )
    rels = None if relationships is None else {_relationship(r) for r in relationships}
    parents: dict[str, set[str]] = defaultdict(set)
    for child, parent, rel in godb.execute(sql):
        if rels is None or _relationship(rel) in rels:
            parents[child].add(parent)
    memo: dict[str, frozenset[str]] = {}

    def anc(term: str) -> frozenset[str]:  # GO is shallow (depth < 30): recursion is fine
        if term not in memo:
            out = {term}
            for p in parents.get(term, ()):
                out |= anc(p)
            memo[term] = frozenset(out)
        return memo[term]

    return {t: anc(t) for t in list(parents)}


def go_gene_sets_from_orgdb(
    orgdb: str | Path,
    godb: str | Path | None = None,
    *,
    namespace: Namespace = "BP",
    evidence: Iterable[str] | None = None,
    exclude_evidence: Iterable[str] | None = None,
    min_size: int = 5,
    max_size: int | None = 1000,
    propagate: bool = True,
    relationships: Iterable[str] | None = None,
    id_type: Literal["symbol", "entrez"] = "symbol",
    universe: Iterable[str] | None = None,
) -> dict[str, list[str]]:
    """Gene Ontology gene sets from a Bioconductor OrgDb SQLite file.

    Parameters
    ----------
    orgdb
        ``org.*.eg.sqlite`` (e.g. ``org.Hs.eg.db/extdata/org.Hs.eg.sqlite``).
    godb
        ``GO.sqlite`` of ``GO.db``: gives term names (sets are named ``"term (GO:id)"`` as in
        the shared GMT files; GO ids alone without it) and the parents used for propagation
        when the OrgDb has no ``go_<ns>_all`` rows.
    namespace
        ``"BP"``, ``"MF"`` or ``"CC"``.
    evidence, exclude_evidence
        Evidence codes to keep (e.g. ``["EXP", "IDA", "IPI", "IMP", "IGI", "IEP"]``) or drop
        (e.g. ``["IEA"]``); with propagation they filter the annotations being propagated.
    min_size, max_size
        Keep sets with this many genes (after ``universe``).
    propagate
        Annotate genes to ancestors of their terms too (the true-path rule).
    relationships
        With propagation from GO.db parents, follow only these relationship types (e.g.
        ``["isa", "part of"]``); ``None`` follows all, as ``go_<ns>_all`` does.
    id_type
        Genes as ``"symbol"`` or ``"entrez"`` ids.
    universe
        Keep only these genes before the size filter.

    Returns
    -------
    Dict set name -> genes (:func:`gene_sets_to_frame` gives the tidy form).
    """
    ns = str(namespace).lower()
    if ns not in ("bp", "mf", "cc"):
        msg = f"namespace must be 'BP', 'MF' or 'CC', not {namespace!r}"
        raise ValueError(msg)
    con = _connect(orgdb)
    gcon = _connect(godb) if godb is not None else None
    try:
        tables = _tables(con)
        if f"go_{ns}" not in tables or "genes" not in tables:
            msg = (
                f"{orgdb} is not an OrgDb SQLite file with GO tables (tables: {sorted(tables)[:8]})"
            )
            raise ValueError(msg)
        if id_type == "symbol":
            gene_sql, gene_table = "gi.symbol", "JOIN gene_info gi ON gi._id = a._id"
        elif id_type == "entrez":
            gene_sql, gene_table = "g.gene_id", "JOIN genes g ON g._id = a._id"
        else:
            msg = f"id_type must be 'symbol' or 'entrez', not {id_type!r}"
            raise ValueError(msg)
        all_table = f"go_{ns}_all"
        use_all = (
            propagate
            and all_table in tables
            and con.execute(f"SELECT 1 FROM {all_table} LIMIT 1").fetchone()
        )
        table = all_table if use_all else f"go_{ns}"
        ann = pd.read_sql_query(
            f"SELECT {gene_sql} AS gene, a.go_id AS go_id, a.evidence AS evidence FROM {table} a {gene_table}",
            con,
        )
        if evidence is not None:
            ann = ann[ann["evidence"].isin(set(evidence))]
        if exclude_evidence is not None:
            ann = ann[~ann["evidence"].isin(set(exclude_evidence))]
        ann = ann[["gene", "go_id"]].drop_duplicates()
        if propagate and not use_all:
            if gcon is None:
                msg = f"{orgdb} has no propagated {all_table} rows: pass godb (GO.sqlite) to propagate"
                raise ValueError(msg)
            anc = _ancestors(gcon, ns, relationships)
            pairs = [(t, a) for t in ann["go_id"].unique() for a in anc.get(t, {t})]
            closure = pd.DataFrame(pairs, columns=["go_id", "ancestor"])
            ann = ann.merge(closure, on="go_id")[["gene", "ancestor"]].rename(
                columns={"ancestor": "go_id"}
            )
            ann = ann.drop_duplicates()
        names: dict[str, str] = {}
        if gcon is not None:
            for go_id, term in gcon.execute("SELECT go_id, term FROM go_term"):
                names[go_id] = f"{term} ({go_id})"
    finally:
        con.close()
        if gcon is not None:
            gcon.close()
    sets: dict[str, list[str]] = {}
    for go_id, genes in ann.groupby("go_id", sort=True)["gene"]:
        sets[names.get(go_id, go_id)] = sorted(set(map(str, genes)))
    out = filter_gene_sets(sets, min_size=min_size, max_size=max_size, universe=universe)
    logger.info("GO %s: %d of %d terms kept", namespace, len(out), len(sets))
    return out
