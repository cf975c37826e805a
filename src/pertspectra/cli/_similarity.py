"""``pertspectra similarity``: which perturbations act alike, scored against known pairs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from . import _options as o
from ._common import command, input_file, provenance, split_list
from ._interpret import read_gene_sets

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer()

#: chosen by measurement (docs/similarity.md): correlation of the predicted changes in gene space
DEFAULT_EMBEDDING = "gene_change"
DEFAULT_METRIC = "correlation"


#: What ``pertspectra similarity`` writes into its folder.
SIMILARITY_FILES = (
    "similarity.csv", "clusters.csv", "cluster_terms.csv", "benchmark.csv", "pr_curves.csv",
    "settings.json",
)  # fmt: skip


@command(app, "similarity")
def similarity(
    model_dir: Annotated[Path, typer.Argument(help="Model folder from `pertspectra fit`.")],
    out: o.Out,
    embedding: Annotated[
        str,
        typer.Option(
            help="'gene_change' (default: predicted change vs control), 'program_change', "
            "'P' (the paper's), or with --data 'data_change' / 'data_pca'."
        ),
    ] = DEFAULT_EMBEDDING,
    metric: Annotated[
        str, typer.Option(help="'correlation' (default), 'cosine' or 'euclidean'.")
    ] = DEFAULT_METRIC,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Screen .h5ad (cells, or one mean per label with --pseudobulk): "
            "adds the raw-data baselines."
        ),
    ] = None,
    perturbation_key: Annotated[
        str | None, typer.Option(help="obs column with perturbation labels (with --data).")
    ] = None,
    pseudobulk: Annotated[
        bool, typer.Option("--pseudobulk", help="--data holds one mean per label.")
    ] = False,
    control: o.Control = None,
    exclude_labels: o.ExcludeLabels = None,
    normalize: o.Normalize = None,
    min_cells: o.MinCells = 50,
    pairs: Annotated[
        list[Path] | None,
        typer.Option("--pairs", help="Known gene-pair file (entity1,entity2); repeatable."),
    ] = None,
    gene_sets: Annotated[
        list[Path] | None,
        typer.Option("--gene-sets", help="GO BP GMT: names each cluster by its top terms."),
    ] = None,
    n_clusters: Annotated[
        int | None, typer.Option(help="Flat clusters (default: best silhouette).")
    ] = None,
    authors_scoring: Annotated[
        bool,
        typer.Option(
            "--authors-scoring",
            help="Also score as the paper's authors did (Euclidean on the embedding, min-max per "
            "column, diagonal and both orientations counted, trapezoidal AUPRC), to compare with "
            "their published numbers.",
        ),
    ] = False,
    permutations: Annotated[int, typer.Option(help="Label shuffles of the p-values.")] = 1000,
    seed: o.Seed = 0,
    overwrite: o.Overwrite = False,
) -> None:
    """Similarity of the single perturbations, clusters, and scores against known pairs."""
    import anndata as ad

    import pertspectra as ps
    from pertspectra.io import write_json, write_table

    from .._utils import atomic_path, check_output_folder

    check_output_folder(
        out, overwrite=overwrite, allowed=SIMILARITY_FILES, what="a similarity folder",
        inputs=[model_dir, data, *(pairs or []), *(gene_sets or [])],
    )  # fmt: skip
    model = ps.model.load_model(model_dir)
    # knowledge files first (cheap, and checked against the model's genes before any work)
    targets = {t for label in model.labels for t in str(label).split("+")}
    sets = read_gene_sets(gene_sets, genes=[*model.genes, *targets]) if gene_sets else None
    known: dict[str, pd.DataFrame] = {}
    for p in pairs or []:
        known[p.name.split(".")[0]] = pair_table = ps.similarity.read_gene_pairs(
            input_file(p, "pairs file")
        )
        ps.priors.check_pairs_named(pair_table, targets, source=f"pairs file {p}")
    stats = None
    if data is not None:
        if perturbation_key is None:
            msg = "--data needs --perturbation-key"
            raise ValueError(msg)
        adata = ad.read_h5ad(input_file(data))
        model.check_genes(adata.var_names, source=f"--data {data}")
        controls = split_list(control) or None
        excluded = split_list(exclude_labels)
        if pseudobulk:
            stats = ps.stats.from_pseudobulk(
                adata, perturbation_key=perturbation_key, controls=controls,
                exclude_labels=excluded,
            )  # fmt: skip
        else:
            if normalize == "log1p":
                ps.stats.normalize_log1p(adata)
            elif normalize is not None:
                msg = f"--normalize must be 'log1p', got {normalize!r}"
                raise ValueError(msg)
            stats = ps.stats.compute_group_stats(
                adata, perturbation_key=perturbation_key, controls=controls,
                exclude_labels=excluded, min_cells=min_cells, progress=False,
            )  # fmt: skip
    kinds = [k for k in ps.similarity.EMBEDDINGS if stats is not None or not k.startswith("data")]
    if embedding not in ps.similarity.EMBEDDINGS:
        msg = f"--embedding must be one of {', '.join(ps.similarity.EMBEDDINGS)}; got {embedding!r}"
        raise ValueError(msg)
    if embedding not in kinds:
        msg = f"--embedding {embedding} needs --data"
        raise ValueError(msg)
    embeddings = {
        k: ps.similarity.embedding(model, kind=k, data=stats)  # type: ignore[arg-type]
        for k in kinds
    }
    sim = ps.similarity.similarity_matrix(embeddings[embedding], metric=metric)  # type: ignore[arg-type]
    clusters = ps.similarity.cluster(sim, n_clusters=n_clusters)
    terms = None
    if sets is not None:
        terms = ps.similarity.cluster_terms(clusters, sets)
    summary = ps.similarity.cluster_summary(clusters, terms)
    table = clusters.rename("cluster").to_frame()
    if terms is not None:
        table["top_terms"] = table["cluster"].map(summary["top_terms"])
    bench = curves = None
    if pairs:
        bench = ps.similarity.benchmark_pairs(
            embeddings,
            known,
            metric=metric,  # type: ignore[arg-type]
            n_permutations=permutations,
            seed=seed,
        )
        curves = ps.similarity.precision_recall_curves(
            embeddings,
            known,
            metric=metric,  # type: ignore[arg-type]
        )
        if authors_scoring:
            import pandas as pd

            rows = []
            for fname, known_pairs in known.items():
                for ename, emb in embeddings.items():
                    score = ps.similarity.score_pairs_authors(emb, known_pairs)
                    rows += [
                        {
                            "pairs_file": fname, "embedding": ename, "metric": "authors_euclidean",
                            "score": name, "value": score[name],
                            "prevalence": score["prevalence"], "n_positive": score["n_positive"],
                            "p_value": float("nan"),
                        }
                        for name in ("auprc_trapezoid", "best_f1")
                    ]  # fmt: skip
            bench = pd.concat([bench, pd.DataFrame(rows)], ignore_index=True)
    settings = {
        "model": str(model_dir), "embedding": embedding, "metric": metric,
        "embeddings_scored": kinds, "data": None if data is None else str(data),
        "pairs": [str(p) for p in pairs or []], "gene_sets": [str(g) for g in gene_sets or []],
        "n_clusters": int(clusters.nunique()), "permutations": permutations,
        **provenance(model_dir, data, *(pairs or []), *(gene_sets or []), seed=seed),
    }  # fmt: skip
    with atomic_path(out, directory=True) as tmp:  # all files or none, no stale ones
        write_table(sim, tmp / "similarity.csv")
        write_table(table, tmp / "clusters.csv")
        if terms is not None:
            write_table(terms, tmp / "cluster_terms.csv")
        if bench is not None:
            write_table(bench.set_index("pairs_file"), tmp / "benchmark.csv")
        if curves is not None:
            write_table(curves.set_index("pairs_file"), tmp / "pr_curves.csv")
        write_json(settings, tmp / "settings.json")
    typer.echo(
        f"{len(sim)} perturbations, embedding {embedding}, metric {metric}: "
        f"{clusters.nunique()} clusters"
    )
    if bench is not None:
        ap = bench[(bench["score"] == "average_precision") & (bench["metric"] == metric)]
        view = ap.pivot_table(index="pairs_file", columns="embedding", values="value")
        prevalence = ap.groupby("pairs_file")["prevalence"].first()
        n_pos = ap.groupby("pairs_file")["n_positive"].first()
        view.insert(0, "n_positive", n_pos)
        view.insert(1, "prevalence", prevalence)
        typer.echo("average precision over unordered pairs of perturbations:")
        typer.echo(view.round(3).to_string())
    typer.echo(f"written to {out}")
