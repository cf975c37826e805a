"""``pertspectra prior``: add the prior gene graph to a copy of an .h5ad file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import _options as o
from ._common import command, input_file, split_list

app = typer.Typer()


@command(app, "prior")
def prior(
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
        float | None,
        typer.Option(
            "--min-score",
            help="Minimum score on 0-1; default 0.7 (STRING's high confidence) for STRING "
            "files, none for other edge lists (as add_prior).",
        ),
    ] = None,
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
    separator: Annotated[str, typer.Option(help="Separator of combined targets.")] = "+",
    control: o.Control = None,
    info: Annotated[
        Path | None,
        typer.Option(
            "--info", help="STRING protein.info file (found beside protein.links if omitted)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
) -> None:
    """Build the prior gene graph from STRING and store it in ``varp['pertspectra_prior']``."""
    import anndata as ad

    import pertspectra as ps

    input_file(data, "input file")
    input_file(string, "--string file")
    if out.exists() and out.resolve() == data.resolve():
        msg = f"--out {out} is the input file; choose another path (the input is never overwritten)"
        raise FileExistsError(msg)
    if out.exists() and not overwrite:
        msg = f"{out} already exists; pass --overwrite to replace it"
        raise FileExistsError(msg)
    adata = ad.read_h5ad(data)
    report = ps.priors.add_prior(
        adata,
        string,
        info=info,
        min_score=min_score,
        channels=channels,
        binary=binary,
        gene_info=gene_info,
        perturbation_key=perturbation_key,
        separator=separator,
        controls=split_list(control) or None,
    )
    typer.echo(report.summary())
    ps.io.write_h5ad(adata, out, overwrite=overwrite, inputs=(data,))
    typer.echo(f"wrote {out}")
