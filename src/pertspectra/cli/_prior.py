"""``pertspectra prior``: the prior gene graph of an .h5ad's genes (graph only, or a full copy)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._keys import KEYS
from . import _options as o
from ._common import command, input_file, split_list

if TYPE_CHECKING:
    import scipy.sparse as sp
    from anndata import AnnData

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
    full_copy: Annotated[
        bool,
        typer.Option(
            "--full-copy",
            help="Write a full copy of DATA with the graph added, instead of the graph alone.",
        ),
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
) -> None:
    """Build the prior gene graph from STRING for DATA's genes and write it to OUT.

    OUT holds only the graph (``varp['pertspectra_prior']``, aligned to DATA's genes) and its
    provenance; use it with ``pertspectra fit DATA --prior OUT``. ``--full-copy`` writes DATA
    with the graph added instead (then ``pertspectra fit OUT`` finds it).
    """
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
    if full_copy:
        adata = ad.read_h5ad(data)
    else:  # labels and genes are all the graph needs: never load X
        backed = ad.read_h5ad(data, backed="r")
        try:
            adata = ad.AnnData(
                obs=backed.obs.copy(),
                var=backed.var[[]].copy(),
                uns={k: backed.uns[k] for k in backed.uns if k == KEYS.target_types},
            )
        finally:
            backed.file.close()
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
    if full_copy:
        ps.io.write_h5ad(adata, out, overwrite=overwrite, inputs=(data,))
        typer.echo(f"wrote {out} (a copy of {data} with the prior graph)")
        return
    from .._utils import file_checksum, package_versions

    ps.priors.write_prior(
        adata,
        out,
        overwrite=overwrite,
        inputs=(data,),
        data=str(data),
        data_sha256=file_checksum(data),
        versions=package_versions("numpy", "scipy", "pandas", "anndata"),
    )
    typer.echo(
        f"wrote {out} (the prior graph only, {report.n_edges} edges on {report.n_genes} genes); "
        f"fit with: pertspectra fit {data} --prior {out} ..."
    )


def prior_for(
    adata: AnnData, data: Path, prior: Path | None, prior_key: str | None
) -> tuple[sp.csr_matrix, dict[str, Any]] | None:
    """The graph of ``--prior FILE`` aligned to ``adata``'s genes (checked before any fit).

    Also refuses a graph-only prior file given as the data.
    """
    import pertspectra as ps

    if ps.priors.is_prior_file(adata):
        msg = (
            f"{data} is a prior file from `pertspectra prior` (the graph only, no cells); pass "
            f"the screen as DATA and this file as --prior {data}"
        )
        raise ValueError(msg)
    if prior is None:
        return None
    input_file(prior, "--prior file")
    mat, info = ps.priors.read_prior(prior, genes=adata.var_names, key=prior_key)
    return mat, {**info, "prior_file": str(prior)}


def attach_prior(adata: AnnData, graph: tuple[sp.csr_matrix, Any] | None) -> None:
    """Store a graph from :func:`prior_for` as ``adata``'s prior (``varp``/``uns``)."""
    if graph is None:
        return
    if KEYS.prior in adata.varp:
        typer.echo(f"note: --prior {graph[1]['prior_file']} replaces the graph stored in the data")
    adata.varp[KEYS.prior] = graph[0]
    adata.uns[KEYS.prior_info] = graph[1]
