"""Which embedding recovers known pairs best: writes ``docs/similarity.md`` (never edit by hand).

Fits the default model (paper parametrization, 200 factors, STRING prior at 0.7) on all of the
Papalexi cells and on the Wessels pseudobulk means, embeds every single perturbation every
way :mod:`pertspectra.similarity` knows (rows of ``P``, predicted change in program space and
in gene space, and the raw-data baselines: observed change vs control and its PCA), and scores
each embedding x metric against every benchmark pair file with at least 10 known pairs among
the screen's targets: average precision over unordered pairs (prevalence beside it), best F1,
EFAAR's tail recall, permutation p-values. The CLI's default embedding is chosen from this
table and must not lose to the raw ``data_change`` on any of these files.

Usage: ``python benchmarks/similarity.py [--max-epochs 2000] [--out docs/similarity.md]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import anndata as ad
import pandas as pd

import pertspectra as ps
from pertspectra.testing import shared_data_dir

sys.path.insert(0, str(Path(__file__).parent))
from results import _markdown

REPO = Path(__file__).resolve().parents[1]
PAIR_FILES = ["CORUM", "HuMAP", "StringDB", "Reactome", "SIGNOR"]


def _screens(data: Path) -> dict:
    string = data / "knowledge/string_v12_human_physical_functional.tsv.gz"

    def papalexi():
        adata = ad.read_h5ad(data / "screens/papalexi2021_thp1_eccite_299genes.h5ad")
        ps.stats.normalize_log1p(adata)
        ps.priors.add_prior(adata, string, perturbation_key="target")
        return ps.stats.compute_group_stats(adata, perturbation_key="target", progress=False)

    def wessels():
        adata = ad.read_h5ad(data / "combinatorial/wessels2023_carpool_substrate.h5ad")
        ps.priors.add_prior(adata, string, perturbation_key="label")
        return ps.stats.from_pseudobulk(adata, perturbation_key="label", controls=["NT_NT"])

    return {"Papalexi 2021 (cells)": papalexi, "Wessels 2023 (pseudobulk)": wessels}


def main() -> None:
    """Run the benchmark and write the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=2000)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "similarity.md")
    args = parser.parse_args()
    data = shared_data_dir(required="benchmark_pairs/CORUM.txt")
    if data is None:
        raise SystemExit("shared data not found (../shared/data or $PERTSPECTRA_SHARED_DATA)")
    parts = [
        "# Perturbation similarity against known pairs",
        "",
        "Written by `benchmarks/similarity.py`. Average precision over unordered pairs of single "
        "perturbations (no diagonal); `prevalence` is what a random ordering gives. Files with "
        "fewer than 10 known pairs among a screen's targets are left out.",
        "",
    ]
    for name, make in _screens(data).items():
        start = time.perf_counter()
        stats = make()
        model = ps.train.fit(stats, max_epochs=args.max_epochs, progress=False, seed=0)
        embs = {
            k: ps.similarity.embedding(model, kind=k, data=stats) for k in ps.similarity.EMBEDDINGS
        }
        labels = list(embs["P"].index)
        pairs = {
            f: ps.similarity.read_gene_pairs(data / f"benchmark_pairs/{f}.txt", universe=labels)
            for f in PAIR_FILES
        }
        pairs = {k: v for k, v in pairs.items() if len(v) >= 10}
        tables = [
            ps.similarity.benchmark_pairs(embs, pairs, metric=m, n_permutations=args.permutations)
            for m in ps.similarity.METRICS
        ]
        bench = pd.concat(tables, ignore_index=True)
        ap = bench[bench["score"] == "average_precision"]
        view = ap.pivot_table(index=["pairs_file", "metric"], columns="embedding", values="value")
        first = ap.groupby("pairs_file")[["n_positive", "prevalence"]].first()
        view = view.join(first, on="pairs_file")
        order = ["n_positive", "prevalence", *ps.similarity.EMBEDDINGS]
        view = view[order].reset_index().set_index("pairs_file")
        parts += [
            f"## {name}",
            "",
            f"{len(labels)} single perturbations; fit {model.training['epochs']} epochs; "
            f"{time.perf_counter() - start:.0f} s in all.",
            "",
            _markdown(view, floatfmt=".3f"),
            "",
        ]
        tails = bench[(bench["score"] == "recall_tails") & (bench["metric"] == "correlation")]
        parts += [
            "EFAAR tail recall (share of known pairs beyond the 5th/95th percentile), correlation:",
            "",
            _markdown(
                tails.pivot_table(index="pairs_file", columns="embedding", values="value"),
                floatfmt=".3f",
            ),
            "",
        ]
        print(f"{name}: done", flush=True)
    args.out.write_text("\n".join(parts))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
