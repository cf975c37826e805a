"""GMT files and GO gene sets from OrgDb / GO.db SQLite files."""

from __future__ import annotations

import gzip
import sqlite3

import pytest

import pertspectra.priors as pp


def test_read_gmt_tab_comma_weighted_and_filters(tmp_path):
    path = tmp_path / "sets.gmt.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("SET1\tdesc\tA\tB\tC\n")
        fh.write("SET2\thttp://x\tA,B\tD\n")  # comma-separated gene field
        fh.write("SET3\tA,B,C,D,E\n")  # no description, one comma-separated field
        fh.write("SET4\t\tA,1.0\tC,0.5\n")  # Enrichr weighted form
        fh.write("\n")
        fh.write("SET1\tdup\tC\tE\n")  # named twice: merged
        fh.write("EMPTY\tnothing\n")
    sets = pp.read_gmt(path)
    assert sets == {
        "SET1": ["A", "B", "C", "E"],
        "SET2": ["A", "B", "D"],
        "SET3": ["A", "B", "C", "D", "E"],
        "SET4": ["A", "C"],
    }
    assert pp.read_gmt(path, min_size=4, max_size=4) == {"SET1": ["A", "B", "C", "E"]}
    assert pp.read_gmt(path, universe=["A", "B"], min_size=2) == {
        "SET1": ["A", "B"],
        "SET2": ["A", "B"],
        "SET3": ["A", "B"],
    }
    frame = pp.gene_sets_to_frame(pp.read_gmt(path))
    assert list(frame.columns) == ["source", "target"]
    assert len(frame) == 4 + 3 + 5 + 2


def test_read_shared_gmt(shared):
    path = shared("knowledge/go_bp_human_2022-07.gmt.gz")
    sets = pp.read_gmt(path)
    assert len(sets) == 9234
    assert "TP53" in sets["mitochondrial genome maintenance (GO:0000002)"]
    assert all(5 <= len(g) <= 1000 for g in sets.values())


def _orgdb(path, with_all=False):
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE genes (_id INTEGER PRIMARY KEY, gene_id VARCHAR(10) NOT NULL UNIQUE);
        CREATE TABLE gene_info (_id INTEGER NOT NULL UNIQUE, gene_name VARCHAR(255), symbol VARCHAR(80));
        CREATE TABLE go_bp (_id INTEGER NOT NULL, go_id CHAR(10) NOT NULL, evidence CHAR(3) NOT NULL);
        CREATE TABLE go_mf (_id INTEGER NOT NULL, go_id CHAR(10) NOT NULL, evidence CHAR(3) NOT NULL);
        CREATE TABLE go_cc (_id INTEGER NOT NULL, go_id CHAR(10) NOT NULL, evidence CHAR(3) NOT NULL);
        CREATE TABLE go_bp_all (_id INTEGER NOT NULL, go_id CHAR(10) NOT NULL, evidence CHAR(3) NOT NULL);
        CREATE TABLE metadata (name VARCHAR(80) PRIMARY KEY, value VARCHAR(255));
        INSERT INTO genes VALUES (1, '101'), (2, '102'), (3, '103');
        INSERT INTO gene_info VALUES (1, 'gene a', 'GA'), (2, 'gene b', 'GB'), (3, 'gene c', 'GC');
        INSERT INTO go_bp VALUES (1, 'GO:0000003', 'IDA'), (2, 'GO:0000002', 'IEA'), (3, 'GO:0000004', 'EXP');
        INSERT INTO go_mf VALUES (1, 'GO:0000010', 'IDA');
        """
    )
    if with_all:  # a deliberately different propagated table, to see that it is used
        con.execute("INSERT INTO go_bp_all VALUES (1, 'GO:0000009', 'IDA')")
    con.commit()
    con.close()


def _godb(path):
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE go_term (_id INTEGER PRIMARY KEY, go_id CHAR(10) NOT NULL UNIQUE, term VARCHAR(255) NOT NULL,
                              ontology VARCHAR(9) NOT NULL, definition TEXT NULL);
        CREATE TABLE go_bp_parents (_id INTEGER NOT NULL, _parent_id INTEGER NOT NULL, relationship_type VARCHAR(7) NOT NULL);
        CREATE TABLE go_mf_parents (_id INTEGER NOT NULL, _parent_id INTEGER NOT NULL, relationship_type VARCHAR(7) NOT NULL);
        INSERT INTO go_term VALUES (11, 'GO:0000001', 'root process', 'BP', ''), (12, 'GO:0000002', 'middle', 'BP', ''),
            (13, 'GO:0000003', 'leaf', 'BP', ''), (14, 'GO:0000004', 'regulation of root', 'BP', ''),
            (15, 'GO:0000009', 'other', 'BP', ''), (20, 'GO:0000010', 'binding', 'MF', '');
        INSERT INTO go_bp_parents VALUES (12, 11, 'isa'), (13, 12, 'part of'), (14, 11, 'regulates');
        """
    )
    con.commit()
    con.close()


def test_go_from_orgdb_propagates_to_ancestors(tmp_path):
    org, go = tmp_path / "org.Xx.eg.sqlite", tmp_path / "GO.sqlite"
    _orgdb(org)
    _godb(go)
    sets = pp.go_gene_sets_from_orgdb(org, go, min_size=1)
    assert sets == {
        "root process (GO:0000001)": ["GA", "GB", "GC"],
        "middle (GO:0000002)": ["GA", "GB"],
        "leaf (GO:0000003)": ["GA"],
        "regulation of root (GO:0000004)": ["GC"],
    }
    direct = pp.go_gene_sets_from_orgdb(org, go, min_size=1, propagate=False)
    assert direct == {
        "middle (GO:0000002)": ["GB"],
        "leaf (GO:0000003)": ["GA"],
        "regulation of root (GO:0000004)": ["GC"],
    }
    no_iea = pp.go_gene_sets_from_orgdb(org, go, min_size=1, exclude_evidence=["IEA"])
    assert no_iea["middle (GO:0000002)"] == ["GA"]
    assert no_iea["root process (GO:0000001)"] == ["GA", "GC"]
    exp = pp.go_gene_sets_from_orgdb(org, go, min_size=1, evidence=["EXP"])
    assert exp == {"root process (GO:0000001)": ["GC"], "regulation of root (GO:0000004)": ["GC"]}
    isa = pp.go_gene_sets_from_orgdb(org, go, min_size=1, relationships=["is_a"])
    assert isa["middle (GO:0000002)"] == ["GB"]  # GA's leaf is only "part of" the middle term
    assert pp.go_gene_sets_from_orgdb(org, go, min_size=2, max_size=2) == {
        "middle (GO:0000002)": ["GA", "GB"]
    }
    ids = pp.gene_sets_to_frame(pp.go_gene_sets_from_orgdb(org, go, min_size=1, id_type="entrez"))
    assert set(ids.loc[ids["source"] == "root process (GO:0000001)", "target"]) == {
        "101",
        "102",
        "103",
    }
    mf = pp.go_gene_sets_from_orgdb(org, go, namespace="MF", min_size=1)
    assert mf == {"binding (GO:0000010)": ["GA"]}


def test_go_from_orgdb_uses_propagated_table_and_errors(tmp_path):
    org, go = tmp_path / "org.sqlite", tmp_path / "GO.sqlite"
    _orgdb(org, with_all=True)
    _godb(go)
    assert pp.go_gene_sets_from_orgdb(org, go, min_size=1) == {"other (GO:0000009)": ["GA"]}
    assert pp.go_gene_sets_from_orgdb(org, min_size=1) == {"GO:0000009": ["GA"]}
    plain = tmp_path / "plain.sqlite"
    _orgdb(plain)
    with pytest.raises(ValueError, match="pass godb"):
        pp.go_gene_sets_from_orgdb(plain, min_size=1)
    with pytest.raises(ValueError, match="namespace"):
        pp.go_gene_sets_from_orgdb(plain, go, namespace="XX")
    with pytest.raises(ValueError, match="not an OrgDb"):
        pp.go_gene_sets_from_orgdb(go, go)
    with pytest.raises(FileNotFoundError):
        pp.go_gene_sets_from_orgdb(tmp_path / "missing.sqlite")
