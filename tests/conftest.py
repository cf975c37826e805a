"""Shared fixtures: seeded simulated screens, the shared real-data folder, small STRING files."""

from __future__ import annotations

import gzip
import signal
from pathlib import Path

import pytest

import pertspectra as ps
from pertspectra.testing import shared_data_dir as _shared_data_dir


@pytest.fixture(autouse=True, scope="session")
def _python_sigint_handler():
    """Python's SIGINT handler, which the interrupt-and-resume tests rely on.

    A job a script starts in the background (``make test &``) inherits SIGINT ignored, and the
    fit then rightly leaves SIGINT alone; the tests interrupt themselves with it.
    """
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The shared real-data folder; skips when absent."""
    path = _shared_data_dir()
    if path is None:
        pytest.skip("shared real data (../shared/data) not available")
    return path


@pytest.fixture(scope="session")
def shared():
    """Function giving a path under the shared data folder, skipping when it is absent."""

    def _get(relative: str) -> Path:
        folder = _shared_data_dir(required=relative)
        if folder is None:
            pytest.skip(f"shared data not available: {relative}")
        return folder / relative

    return _get


@pytest.fixture(scope="session")
def screen_path(shared):
    """Function giving the path of a shared screen, skipping when it is absent."""
    return lambda name: shared(f"screens/{name}")


@pytest.fixture(scope="session")
def toy_adata():
    return ps.datasets.toy(seed=0)


@pytest.fixture(scope="session")
def toy_stats(toy_adata):
    return ps.stats.compute_group_stats(toy_adata, perturbation_key="perturbation", progress=False)


@pytest.fixture(scope="session")
def toy_model(toy_stats):
    return ps.train.fit(toy_stats, n_factors=6, max_epochs=300, progress=False, seed=0)


@pytest.fixture(scope="session")
def string_table(shared) -> Path:
    """The shared STRING v12 symbol table."""
    return shared("knowledge/string_v12_human_physical_functional.tsv.gz")


@pytest.fixture(scope="session")
def gene_tables(shared) -> tuple[Path, Path]:
    """The shared genes and aliases tables."""
    return (
        shared("knowledge/human_genes_orgHsegdb_2022-09.tsv.gz"),
        shared("knowledge/human_gene_aliases_orgHsegdb_2022-09.tsv.gz"),
    )


# protein -> symbol; GENEB has two proteins (isoforms), P9 is not in the info file
INFO = {
    "9606.ENSP00000000001": "GENEA",
    "9606.ENSP00000000002": "GENEB",
    "9606.ENSP00000000003": "GENEB",
    "9606.ENSP00000000004": "GENEC",
    "9606.ENSP00000000005": "GENED",
    "9606.ENSP00000000006": "GENEE",
}
DETAILED_COLS = [
    "neighborhood",
    "fusion",
    "cooccurence",
    "coexpression",
    "experimental",
    "database",
    "textmining",
]
# protein1, protein2, 7 channels, combined (both orientations, as STRING writes them)
DETAILED_ROWS = [
    ("1", "2", 0, 0, 0, 0, 500, 900, 0, 947),
    ("2", "1", 0, 0, 0, 0, 500, 900, 0, 947),
    ("1", "3", 0, 0, 0, 0, 0, 0, 800, 800),  # GENEA-GENEB again (other isoform): max kept
    ("3", "1", 0, 0, 0, 0, 0, 0, 800, 800),
    ("2", "4", 0, 0, 0, 300, 0, 0, 650, 744),
    ("4", "2", 0, 0, 0, 300, 0, 0, 650, 744),
    ("4", "5", 0, 0, 0, 699, 0, 0, 0, 699),  # just below 0.7
    ("5", "4", 0, 0, 0, 699, 0, 0, 0, 699),
    ("2", "3", 0, 0, 0, 0, 950, 0, 0, 950),  # GENEB-GENEB: a self-pair after mapping
    ("5", "6", 0, 0, 0, 0, 720, 0, 0, 720),
    ("6", "5", 0, 0, 0, 0, 720, 0, 0, 720),
    ("1", "9", 0, 0, 0, 0, 999, 0, 0, 999),  # protein 9 has no info row
]


def _pid(x: str) -> str:
    return f"9606.ENSP{int(x):011d}"


@pytest.fixture
def string_files(tmp_path: Path) -> tuple[Path, Path]:
    """A ``protein.links.detailed`` file and its ``protein.info`` file, gzipped."""
    links = tmp_path / "9606.protein.links.detailed.v12.0.txt.gz"
    with gzip.open(links, "wt") as fh:
        fh.write(" ".join(["protein1", "protein2", *DETAILED_COLS, "combined_score"]) + "\n")
        for r in DETAILED_ROWS:
            fh.write(" ".join([_pid(r[0]), _pid(r[1]), *map(str, r[2:])]) + "\n")
    info = tmp_path / "9606.protein.info.v12.0.txt.gz"
    with gzip.open(info, "wt") as fh:
        fh.write("#string_protein_id\tpreferred_name\tprotein_size\tannotation\n")
        for pid, name in INFO.items():
            fh.write(f"{pid}\t{name}\t100\tsome protein; with spaces\n")
    return links, info


@pytest.fixture
def detailed_cols() -> list[str]:
    """Channel columns of the detailed fixture."""
    return list(DETAILED_COLS)


@pytest.fixture
def string_symbol_rows() -> list[tuple[str, str, float]]:
    """The fixture's rows mapped to symbols by hand (rows with unknown proteins dropped)."""
    out = []
    for r in DETAILED_ROWS:
        a, b = INFO.get(_pid(r[0])), INFO.get(_pid(r[1]))
        if a and b:
            out.append((a, b, float(r[-1])))
    return out


@pytest.fixture(scope="session")
def toy_inputs(tmp_path_factory, toy_adata, toy_stats) -> dict[str, Path]:
    """Toy input files: the screen, a chain network of its genes, gene sets, pairs, a model."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("toy_inputs")
    data = folder / "toy.h5ad"
    toy_adata.write_h5ad(data)
    genes = list(toy_adata.var_names)
    net = folder / "net.csv"
    pd.DataFrame({"source": genes[:-1], "target": genes[1:], "weight": 0.9}).to_csv(
        net, index=False
    )
    gmt = folder / "sets.gmt"
    gmt.write_text(
        "".join(f"SET{k}\tdesc\t" + "\t".join(genes[k * 12 : k * 12 + 12]) + "\n" for k in range(5))
    )
    pairs = folder / "pairs.csv"
    pairs.write_text("entity1,entity2\nG0,G1\nG2,G3\n")
    model = folder / "model"
    ps.train.fit(toy_stats, n_factors=3, max_epochs=20, progress=False, seed=0).save(model)
    return {"data": data, "net": net, "gmt": gmt, "pairs": pairs, "model": model}
