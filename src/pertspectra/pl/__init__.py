"""Figures, one per function: each takes ``ax=None`` (a new figure) and returns the Axes.

Usable from a notebook on the objects the library returns, and drawn by the report on the
stored results:

- :func:`loss`: the training objective per epoch, its reconstruction and graph parts and the
  learning-rate steps;
- :func:`scorecard`, :func:`win_rates`: each metric's distribution per method (model,
  baselines, ceiling) and the model's win rate against each baseline;
- :func:`predicted_vs_observed`: predicted against observed change, gene by gene;
- :func:`on_target`: the targeted gene's own change, observed against predicted;
- :func:`programs`: the programs' top genes, named by gene sets;
- :func:`perturbation_programs`: perturbations x programs effects, clustered;
- :func:`similarity`: clustered similarity of perturbations with each cluster's terms;
- :func:`precision_recall`: precision-recall curves against known gene pairs;
- :func:`interaction`, :func:`interaction_summary`: combinations observed, additive and
  predicted; the model against the additive baseline per combination;
- :func:`prior_coverage`: genes and perturbed genes the prior graph reaches.
"""

from ._effects import perturbation_programs
from ._interaction import interaction
from ._interaction_summary import interaction_summary
from ._loss import loss
from ._pr import precision_recall
from ._predicted import predicted_vs_observed
from ._prior import prior_coverage
from ._program_map import programs
from ._scorecard import scorecard
from ._similarity_map import similarity
from ._targets import on_target
from ._win_rates import win_rates

__all__ = [
    "interaction",
    "interaction_summary",
    "loss",
    "on_target",
    "perturbation_programs",
    "precision_recall",
    "predicted_vs_observed",
    "prior_coverage",
    "programs",
    "scorecard",
    "similarity",
    "win_rates",
]
