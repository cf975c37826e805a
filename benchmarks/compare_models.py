"""Compare two fitted models of the same data: do they agree on factors and predictions?

Prints the matched correlation of the factors (rows of ``W``, optimal one-to-one matching of
factors by correlation across genes), the correlation of their predicted changes against control
for every label both know, the largest prediction difference, and each model's epochs and loss.
Used to judge whether a stopping rule (or any approximation) changes what a user reads.

Usage: ``python benchmarks/compare_models.py MODEL_DIR_A MODEL_DIR_B``.
"""

from __future__ import annotations

import argparse

import numpy as np

from pertspectra.evaluate import matched_correlation
from pertspectra.model import load_model


def main() -> None:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_a")
    ap.add_argument("model_b")
    args = ap.parse_args()
    a, b = load_model(args.model_a), load_model(args.model_b)
    if list(a.genes) != list(b.genes):
        raise SystemExit("the two models have different genes")
    m = matched_correlation(np.asarray(a.W, float), np.asarray(b.W, float))
    print(
        f"factors: matched correlation median {np.median(m):.3f}, mean {m.mean():.3f}, "
        f"min {m.min():.3f}; share >= 0.95: {(m >= 0.95).mean():.2f}"
    )
    labels = [lab for lab in a.labels if lab in set(b.labels)]
    pa, pb = a.predict(labels).to_numpy(), b.predict(labels).to_numpy()
    ca, cb = a.predict(["ctrl"]).to_numpy()[0], b.predict(["ctrl"]).to_numpy()[0]
    r = np.array([np.corrcoef(x - ca, y - cb)[0, 1] for x, y in zip(pa, pb, strict=True)])
    print(
        f"predictions ({len(labels)} labels): correlation of the predicted change vs ctrl "
        f"median {np.nanmedian(r):.4f}, min {np.nanmin(r):.4f}; "
        f"max |A - B| / max |A| = {np.abs(pa - pb).max() / np.abs(pa).max():.2e}"
    )
    for name, mod in (("A", a), ("B", b)):
        t = mod.training
        print(
            f"{name}: {t['epochs']} epochs, final loss {t['final_loss']:.8g} "
            f"(recon {t['final_recon']:.8g}, graph {t['final_graph']:.8g}); {t['stop_reason']}"
        )


if __name__ == "__main__":
    main()
