"""``pertspectra prior``: add the prior graph to an .h5ad file (wired into the main CLI)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from pertspectra._utils import atomic_path

logger = logging.getLogger(__name__)


def _perturbed_genes(adata, key: str | None) -> list[str] | None:
    if key is None:
        return None
    if key not in adata.obs.columns:
        msg = f"--perturbation-key {key!r} is not an obs column (columns: {list(adata.obs.columns)[:10]})"
        raise typer.BadParameter(msg)
    from pertspectra.design import LabelParser

    parser = LabelParser()
    labels = adata.obs[key]
    values = labels.cat.categories if hasattr(labels, "cat") else labels.dropna().unique()
    used = set(labels.dropna().astype(str))
    tokens: dict[str, None] = {}
    for label in values:
        if str(label) in used:
            tokens.update(dict.fromkeys(parser.tokens(label)))
    return list(tokens)


def prior_command(
    data: Annotated[Path, typer.Argument(help="Input .h5ad (never modified).")],
    string: Annotated[
        Path,
        typer.Option(
            "--string",
            help="STRING protein.links[.detailed|.full] file, symbol table or edge list.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output .h5ad (written atomically).")],
    min_score: Annotated[
        float, typer.Option("--min-score", help="Minimum score on 0-1 (0.7: high confidence).")
    ] = 0.7,
    channels: Annotated[
        str | None,
        typer.Option(
            "--channels", help="Recombine only these STRING channels, e.g. experiments,database."
        ),
    ] = None,
    gene_info: Annotated[
        Path | None,
        typer.Option(
            "--gene-info", help="NCBI gene_info (or genes/aliases table) to look up var names."
        ),
    ] = None,
    binary: Annotated[
        bool, typer.Option("--binary", help="Store 1 per edge instead of the score.")
    ] = False,
    perturbation_key: Annotated[
        str | None,
        typer.Option(
            "--perturbation-key", help="obs column with perturbation labels, for the report."
        ),
    ] = None,
    info: Annotated[
        Path | None,
        typer.Option(
            "--info", help="STRING protein.info file (found beside protein.links if omitted)."
        ),
    ] = None,
) -> None:
    """Build the prior gene graph from STRING and store it in ``varp['pertspectra_prior']``."""
    import anndata as ad

    from ._prior import add_prior

    if not data.is_file():
        msg = f"input file not found: {data}"
        raise FileNotFoundError(msg)
    if not string.is_file():
        msg = f"--string file not found: {string}"
        raise FileNotFoundError(msg)
    if out.resolve() == data.resolve() or (out.exists() and out.samefile(data)):
        msg = f"--out {out} is the input file; choose another path (the input is never overwritten)"
        raise typer.BadParameter(msg)
    if not 0.0 <= min_score <= 1.0:
        msg = f"--min-score {min_score} must be in [0, 1] (STRING's 700 is 0.7)"
        raise typer.BadParameter(msg)
    adata = ad.read_h5ad(data)
    perturbed = _perturbed_genes(adata, perturbation_key)
    report = add_prior(
        adata,
        string,
        info=info,
        min_score=min_score,
        channels=channels,
        binary=binary,
        gene_info=gene_info,
        perturbed=perturbed,
    )
    typer.echo(report.summary())
    with atomic_path(out) as tmp:
        adata.write_h5ad(tmp)
    typer.echo(f"wrote {out}")
