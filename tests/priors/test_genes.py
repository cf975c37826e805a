"""Gene identifier harmonization."""

from __future__ import annotations

import pandas as pd
import pytest

import pertspectra.priors as pp

GENE_INFO = (
    "#tax_id\tGeneID\tSymbol\tLocusTag\tSynonyms\tdbXrefs\tchromosome\tmap_location\tdescription\n"
    "9606\t1\tA1BG\t-\tA1B|ABG|GAB\tMIM:138670|HGNC:HGNC:5|Ensembl:ENSG00000121410\t19\t19q13.43\talpha-1-B glycoprotein\n"
    "9606\t4735\tSEPTIN2\t-\tDIFF6|NEDD5|SEPT2\tHGNC:HGNC:7729|Ensembl:ENSG00000168385\t2\t2q37.3\tseptin 2\n"
    "9606\t23157\tSEPTIN6\t-\tSEP2|SEPT2|SEPT6\tEnsembl:ENSG00000125354\tX\tXq24\tseptin 6\n"
    "9606\t55016\tMARCHF1\t-\tMARCH1|RNF171\tEnsembl:ENSG00000145416\t4\t4q32.2\tmembrane associated ring-CH-type finger 1\n"
    "9606\t8553\tBHLHE40\t-\tDEC1|STRA13\tEnsembl:ENSG00000134107\t3\t3p26.1\tbasic helix-loop-helix\n"
    "9606\t50514\tDELEC1\t-\tDEC1|CTSL2\t-\t9\t9q33.1\tdeleted in esophageal cancer 1\n"
    "10090\t11287\tPzp\t-\tA1m|A2m\tEnsembl:ENSMUSG00000030359\t6\t6 F1\tPZP\n"
)


def _statuses(table: pd.DataFrame) -> dict[str, tuple[str, str]]:
    return {
        i: (s, st)
        for i, s, st in zip(table["input"], table["symbol"], table["status"], strict=True)
    }


def test_gene_info_format(tmp_path):
    path = tmp_path / "Homo_sapiens.gene_info"
    path.write_text(GENE_INFO)
    names = [
        "A1BG",
        "ABG",
        "ENSG00000121410.7",
        "SEPT2",
        "1-Mar",
        "Mar-01",
        "2-Sep",
        "DEC1",
        "1-Dec",
        "Pzp",
        "nope",
    ]
    out = pp.harmonize_genes(names, gene_info=path, tax_id=9606)
    assert list(out.columns) == ["input", "symbol", "status", "candidates"]
    assert list(out["input"]) == names
    got = _statuses(out)
    assert got["A1BG"] == ("A1BG", "exact")
    assert got["ABG"] == ("A1BG", "alias")
    assert got["ENSG00000121410.7"] == ("A1BG", "ensembl")
    assert got["SEPT2"] == ("SEPTIN2", "alias")  # renamed form wins over SEPTIN6's synonym
    assert got["1-Mar"] == ("MARCHF1", "mangled")
    assert got["Mar-01"] == ("MARCHF1", "mangled")
    assert got["2-Sep"] == ("SEPTIN2", "mangled")
    assert got["DEC1"] == ("", "ambiguous")
    assert out.loc[out["input"] == "DEC1", "candidates"].item() == "BHLHE40;DELEC1"
    assert got["1-Dec"][1] == "ambiguous"
    assert got["Pzp"] == ("", "unmapped")  # mouse row filtered out by tax_id
    assert got["nope"] == ("", "unmapped")
    assert _statuses(pp.harmonize_genes(["Pzp"], gene_info=path))["Pzp"] == ("Pzp", "exact")


def test_shared_tables_real_aliases(gene_tables):
    genes, aliases = gene_tables
    names = [
        "SEPT2",
        "2-Sep",
        "1-Mar",
        "MARCH1",
        "ENSG00000141510.17",
        "ENSG00000141510",
        "TP53",
        "DEC1",
        "OCT4",
        "XYZ123",
    ]
    got = _statuses(pp.harmonize_genes(names, genes_table=genes, aliases_table=aliases))
    assert got["SEPT2"] == ("SEPTIN2", "alias")
    assert got["2-Sep"] == ("SEPTIN2", "mangled")
    assert got["1-Mar"] == ("MARCHF1", "mangled")
    assert got["MARCH1"] == ("MARCHF1", "alias")
    assert got["ENSG00000141510.17"] == ("TP53", "ensembl")
    assert got["ENSG00000141510"] == ("TP53", "ensembl")
    assert got["TP53"] == ("TP53", "exact")
    assert got["DEC1"][1] == "ambiguous"  # BHLHE40 or DELEC1: reported, not guessed
    assert got["OCT4"][1] == "ambiguous"  # POU5F1 and two pseudogenes
    assert got["XYZ123"] == ("", "unmapped")


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="at least one gene table"):
        pp.harmonize_genes(["A"])
    bad = tmp_path / "bad.tsv"
    bad.write_text("x\ty\n1\t2\n")
    with pytest.raises(ValueError, match="unrecognised gene table"):
        pp.harmonize_genes(["A"], gene_info=bad)
    with pytest.raises(FileNotFoundError):
        pp.harmonize_genes(["A"], gene_info=tmp_path / "missing.tsv")
