"""``pertspectra programs``: what a fit's programs are and what each perturbation moves.

A model folder fitted under several conditions (:func:`pertspectra.model.is_condition_model`) is
interpreted with :func:`pertspectra.enrich.interpret_conditions`: the same files, each table with
``condition`` and ``block`` (``shared`` / ``own``) columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from . import _options as o
from ._common import command, input_file, provenance

if TYPE_CHECKING:
    import pandas as pd

    from pertspectra.model import ConditionModel, FittedModel

app = typer.Typer()

GeneSets = Annotated[
    list[Path],
    typer.Option(
        "--gene-sets",
        help="Gene sets: a GMT file (plain or .gz) or a Bioconductor OrgDb SQLite (GO BP); "
        "repeatable.",
    ),
]
Data = Annotated[
    Path | None,
    typer.Option(
        help="The prior file from `pertspectra prior` (or an .h5ad holding the graph in varp): "
        "the graph feeds the diagnostics."
    ),
]
PerturbationKey = Annotated[
    str | None, typer.Option(help="obs column with perturbation labels (with --data).")
]
StringFile = Annotated[
    Path | None,
    typer.Option(
        "--string", help="STRING table: runs the paper's recovery test (needs GO BP gene sets)."
    ),
]


def load_any_model(path: Path) -> FittedModel | ConditionModel:
    """Load the model folder ``path``, fitted under one condition or several.

    A :class:`~pertspectra.model.ConditionModel` when :func:`pertspectra.model.is_condition_model`
    says so, else a :class:`~pertspectra.model.FittedModel`.
    """
    import pertspectra as ps

    if ps.model.is_condition_model(path):
        return ps.model.ConditionModel.load(path)
    return ps.model.load_model(path)


def read_gene_sets(
    paths: list[Path], *, genes: Iterable[str] | None = None
) -> dict[str, list[str]]:
    """Gene sets from GMT files and OrgDb SQLite files, merged (later names win).

    With ``genes`` (the measured genes), a file none of whose sets names one is an error.
    """
    import pertspectra as ps

    measured = None if genes is None else list(genes)
    sets: dict[str, list[str]] = {}
    for path in paths:
        input_file(path, "gene-set file")
        if path.suffix in (".sqlite", ".db"):
            read = ps.priors.go_gene_sets_from_orgdb(path)
        else:
            read = ps.priors.read_gmt(path)
        if measured is not None:
            ps.priors.check_gene_sets(read, measured, source=f"gene-set file {path}")
        sets |= read
    if not sets:
        msg = "no gene sets read (pass --gene-sets FILE.gmt)"
        raise ValueError(msg)
    return sets


def prior_edges(
    data: Path,
    key: str = "pertspectra_prior",
    *,
    model: FittedModel | ConditionModel | None = None,
) -> pd.DataFrame | None:
    """The prior graph stored in ``data`` (``varp[key]``) as an edge table, or ``None``.

    With ``model``, ``data`` lacking genes of the model is an error.
    """
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    adata = ad.read_h5ad(input_file(data), backed="r")
    if model is not None:
        import pertspectra as ps

        if isinstance(model, ps.model.ConditionModel):
            model = model.condition(model.conditions[0])
        model.check_genes(adata.var_names, source=f"--data {data}")
    if key not in adata.varp:
        return None
    coo = sp.triu(sp.csr_matrix(adata.varp[key]), k=1).tocoo()
    names = adata.var_names.to_numpy()
    return pd.DataFrame({"source": names[coo.row], "target": names[coo.col], "weight": coo.data})


@command(app, "programs")
def programs(
    model_dir: Annotated[
        Path,
        typer.Argument(
            help="Model folder from `pertspectra fit` (with or without --condition-key)."
        ),
    ],
    gene_sets: GeneSets,
    out: o.Out,
    method: Annotated[
        str, typer.Option(help="'ulm' (default), 'gsea' (the paper's) or 'ora'.")
    ] = "ulm",
    data: Data = None,
    perturbation_key: PerturbationKey = None,
    string: StringFile = None,
    min_size: Annotated[int, typer.Option(help="Smallest gene set (genes measured).")] = 10,
    max_size: Annotated[int, typer.Option(help="Largest gene set (genes measured).")] = 300,
    n_genes: Annotated[int, typer.Option(help="Top genes listed per program.")] = 20,
    permutations: Annotated[int, typer.Option(help="GSEA permutations.")] = 1000,
    seed: o.Seed = 0,
    overwrite: o.Overwrite = False,
) -> None:
    """Name programs by gene sets; what each perturbation moves; the paper's recovery test."""
    import pertspectra as ps

    from .._utils import check_output_folder

    check_output_folder(
        out, overwrite=overwrite, allowed=ps.enrich.Programs.FILES, what="a programs folder",
        inputs=[model_dir, *gene_sets, data, string],
    )  # fmt: skip
    model = load_any_model(model_dir)
    sets = read_gene_sets(gene_sets, genes=model.genes)
    prior = prior_edges(data, model=model) if data is not None else None
    del perturbation_key  # labels come from the model; accepted for symmetry with `similarity`
    edges = None
    if string is not None:
        edges = ps.priors.read_string(input_file(string, "STRING table"), min_score=0.8)
    conditions = getattr(model, "conditions", None)
    interpret = (
        ps.enrich.interpret_programs if conditions is None else ps.enrich.interpret_conditions
    )
    res = interpret(
        model,  # type: ignore[arg-type]
        sets,
        method=method,  # type: ignore[arg-type]
        min_size=min_size,
        max_size=max_size,
        n_genes=n_genes,
        prior=prior,
        string=edges,
        permutations=permutations,
        seed=seed,
    )
    res.settings |= provenance(model_dir, *gene_sets, data, string, seed=seed)
    res.write(out, overwrite=overwrite)
    d = res.diagnostics
    named = int(d["name"].str.contains(": ").sum())
    what = f"{len(d)} programs"
    if conditions is not None:
        n_shared = int((d["block"] == "shared").sum())
        what = (
            f"{len(d)} programs ({n_shared} shared by the {len(conditions)} conditions, "
            f"{len(d) - n_shared} conditions' own)"
        )
    typer.echo(
        f"{what} scored against {res.settings['n_gene_sets_tested']} gene sets "
        f"({method}); {named} named by a term at FDR <= 0.05; {int(d['single_gene'].sum())} "
        f"single-gene program(s); median effective genes {d['effective_genes'].median():.0f}"
    )
    recoveries = getattr(res, "recoveries", {}) or {None: res.recovery}
    for c, r in recoveries.items():
        if r is None:
            continue
        where = "" if c is None else f" in {c}"
        flag = "" if r.informative else f" -- UNINFORMATIVE: fewer than {ps.enrich.MIN_TERMS} terms"
        typer.echo(
            f"recovery test{where}: {r.fraction:.3f} of perturbations recovered (adjusted p < "
            f"0.001); shuffled labels {r.shuffled_fraction:.3f}; {r.n_terms} terms{flag}"
        )
    typer.echo(f"written to {out}")
