"""Evaluation: protocols and splits, metrics, baselines, ceilings, other models' predictions.

- :func:`evaluate`: the scorecard of every held-out regime (:class:`Scorecard`);
- :func:`evaluate_conditions`: the scorecard per condition of a screen under several
  conditions, beside a pooled fit and one fit per condition (:func:`condition_table`);
- :func:`make_split`: the authors' folds over combinations or stratified cell splits;
- :func:`prediction_metrics`, :func:`rank_l1`: the metrics, by name (:data:`METRICS`);
- :func:`baseline_predictions`: control, mean and additive baselines;
- :func:`read_predictions`: another model's predictions, scored like ours;
- :func:`seed_agreement`: how far fits that differ only in their seed agree (objectives,
  predictions, programs; :class:`SeedAgreement`);
- :func:`holdout_combinations`, :func:`holdout_cells`, :func:`split_cells`: the quick held-out
  checks the demo runs.
"""

from ._baselines import baseline_predictions
from ._condition_split import condition_split
from ._condition_summary import CONDITION_FITS, condition_table
from ._conditions import evaluate_conditions
from ._external import read_predictions
from ._holdout import Holdout, holdout_cells, holdout_combinations, split_cells
from ._metrics import LOWER_IS_BETTER, METRICS, matched_correlation, prediction_metrics, rank_l1
from ._protocols import check_split, eligible_combinations, make_split
from ._scorecard import evaluate
from ._seeds import SeedAgreement, seed_agreement
from ._split import split_combinations
from ._summary import Scorecard, summarize

__all__ = [
    "CONDITION_FITS",
    "LOWER_IS_BETTER",
    "METRICS",
    "Holdout",
    "Scorecard",
    "SeedAgreement",
    "baseline_predictions",
    "check_split",
    "condition_split",
    "condition_table",
    "eligible_combinations",
    "evaluate",
    "evaluate_conditions",
    "holdout_cells",
    "holdout_combinations",
    "make_split",
    "matched_correlation",
    "prediction_metrics",
    "rank_l1",
    "read_predictions",
    "seed_agreement",
    "split_cells",
    "split_combinations",
    "summarize",
]
