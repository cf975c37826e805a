"""CORUM complexes and gene-pair label files."""

from __future__ import annotations

import pandas as pd
import pytest

import pertspectra.similarity as pp

CORUM_HEADER = (
    "ComplexID\tComplexName\tOrganism\tSynonyms\tsubunits(Gene name)\tsubunits(Entrez IDs)"
)


def test_read_corum_fixture(tmp_path):
    path = tmp_path / "coreComplexes.txt"
    path.write_text(
        f"{CORUM_HEADER}\n"
        "1\tBCL6-HDAC4 complex\tHuman\tNone\tBCL6;HDAC4\t604;9759\n"
        "2\tMouse thing\tMouse\tNone\tAbc1;Abc2\t1;2\n"
        "3\tWith gaps\tHuman\tNone\tA;None;B;A;\t1;2;3\n"
        "4\tSingle\tHuman\tNone\tSOLO\t5\n"
    )
    sets = pp.read_corum(path)
    assert sets == {
        "BCL6-HDAC4 complex (CORUM:1)": ["BCL6", "HDAC4"],
        "With gaps (CORUM:3)": ["A", "B"],
    }
    assert list(pp.read_corum(path, organism="mouse")) == ["Mouse thing (CORUM:2)"]
    assert len(pp.read_corum(path, organism=None, min_size=1)) == 4
    with pytest.raises(ValueError, match="no 'Yeast' complexes"):
        pp.read_corum(path, organism="Yeast")
    bad = tmp_path / "bad.txt"
    bad.write_text("a\tb\n")
    with pytest.raises(ValueError, match="not a CORUM"):
        pp.read_corum(bad)


def test_read_corum_shared(shared):
    path = shared("knowledge/corum_v3_core_complexes.txt.gz")
    raw = pd.read_csv(
        path, sep="\t", usecols=["ComplexID", "Organism", "subunits(Gene name)"], dtype=str
    )
    human = raw[raw["Organism"] == "Human"]
    assert len(human) == 2417
    sets = pp.read_corum(path, min_size=1)
    assert len(sets) == len(human)
    assert sets["BCL6-HDAC4 complex (CORUM:1)"] == ["BCL6", "HDAC4"]
    pairs = pp.pairs_from_gene_sets(sets)
    assert (pairs["entity1"] < pairs["entity2"]).all()


def test_read_gene_pairs_fixture(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("entity1,entity2\nB,A\nA,B\nA,A\nC,A\nA,C\nD,E\n")
    pairs = pp.read_gene_pairs(path)
    assert pairs.to_dict("list") == {"entity1": ["A", "A", "D"], "entity2": ["B", "C", "E"]}
    assert len(pp.read_gene_pairs(path, universe=["A", "B", "D"])) == 1


@pytest.mark.parametrize("name", ["CORUM.txt", "Reactome.txt", "SIGNOR.txt"])
def test_read_gene_pairs_shared_against_recount(shared, name):
    path = shared(f"benchmark_pairs/{name}")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    want = {
        frozenset((a.strip(), b.strip()))
        for a, b in zip(raw["entity1"], raw["entity2"], strict=True)
        if a.strip() != b.strip()
    }
    pairs = pp.read_gene_pairs(path)
    assert len(pairs) == len(want)
    assert {frozenset(p) for p in zip(pairs["entity1"], pairs["entity2"], strict=True)} == want
    assert not pairs.duplicated().any()
