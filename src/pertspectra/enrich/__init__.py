"""What the fit means: programs named by gene sets, what each perturbation moves, the recovery test.

Programs are read in gene space as the authors report them: each row of ``W`` scaled by the
gene scaling and renormalized over genes (:func:`program_loadings`).

- :func:`interpret_programs`: everything below in one call, as a :class:`Programs` (what
  ``pertspectra programs`` writes);
- :func:`score_programs`: programs against gene sets by ``ulm`` (default), GSEA prerank or
  over-representation; :func:`top_genes`, :func:`best_terms`, :func:`program_names`;
- :func:`perturbation_programs`, :func:`program_activity`: each perturbation's signed effect on
  every program (expression units, so tiny programs do not rank first);
- :func:`program_diagnostics`: effective genes, single-gene programs, agreement with the prior;
- :func:`fit_warnings`: not converged, factors >= genes, mostly single-gene programs;
- :func:`recovery_test`: the paper's interpretability test beside a shuffled-label baseline;
- :func:`overrepresentation`: the hypergeometric test of gene lists against gene sets;
- :func:`interpret_conditions`: the same tables for a model fitted under several conditions
  (a :class:`ConditionPrograms`, with ``condition`` and ``block`` = shared / own columns);
  :func:`condition_loadings`: every program's gene loadings once; :func:`condition_fit_warnings`:
  :func:`fit_warnings` of every condition, each sentence once, naming the conditions it holds in.
"""

from __future__ import annotations

from ._conditions import (
    ALL_CONDITIONS,
    BLOCKS,
    ConditionPrograms,
    condition_fit_warnings,
    condition_loadings,
    interpret_conditions,
)
from ._gsea import prerank_unweighted, running_sum_es
from ._interpret import Programs, interpret_programs, store_programs
from ._loadings import (
    log_ratio_scores,
    program_activity,
    program_loadings,
    program_sizes,
    single_labels,
)
from ._ora import overrepresentation
from ._perturbations import fit_warnings, perturbation_programs, program_diagnostics
from ._programs import (
    METHODS,
    best_terms,
    cut_gene_sets,
    program_names,
    score_programs,
    top_genes,
    ulm,
)
from ._recovery import MIN_TERMS, Recovery, known_terms, recovery_test

__all__ = [
    "ALL_CONDITIONS",
    "BLOCKS",
    "METHODS",
    "MIN_TERMS",
    "ConditionPrograms",
    "Programs",
    "Recovery",
    "best_terms",
    "condition_fit_warnings",
    "condition_loadings",
    "cut_gene_sets",
    "fit_warnings",
    "interpret_conditions",
    "interpret_programs",
    "known_terms",
    "log_ratio_scores",
    "overrepresentation",
    "perturbation_programs",
    "prerank_unweighted",
    "program_activity",
    "program_diagnostics",
    "program_loadings",
    "program_names",
    "program_sizes",
    "recovery_test",
    "running_sum_es",
    "score_programs",
    "single_labels",
    "store_programs",
    "top_genes",
    "ulm",
]
