"""pl.loss and pl.prior_coverage."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.axes import Axes

from pertspectra import pl

TRAINING = {
    "loss_history": [10.0, 6.0, 4.0, 3.5, 3.4],
    "recon_history": [8.0, 5.0, 3.5, 3.2, 3.1],
    "graph_history": [2.0, 1.0, 0.5, 0.3, 0.3],
    "lr_steps": [2, 4],
    "learning_rates": [1.0, 0.1, 0.01],
    "stop_reason": "relative change below tol",
}


def _curves(ax, n):
    return [list(line.get_ydata()) for line in ax.get_lines() if len(line.get_ydata()) == n]


def test_loss_draws_each_part_per_epoch_on_a_log_scale():
    ax = pl.loss(TRAINING)
    assert isinstance(ax, Axes)
    curves = _curves(ax, 5)
    assert curves == [
        TRAINING["loss_history"],
        TRAINING["recon_history"],
        TRAINING["graph_history"],
    ]
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3, 4, 5]
    assert ax.get_yscale() == "log"
    assert "relative change below tol" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["total objective", "reconstruction", "graph"]


def test_loss_marks_each_learning_rate_step_with_the_new_rate():
    ax = pl.loss(TRAINING)
    steps = [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert steps == [2, 4]
    texts = [t.get_text().strip() for t in ax.texts]
    assert texts == ["lr → 0.1", "lr → 0.01"]


def test_loss_with_a_zero_graph_term_uses_symlog_and_keeps_values():
    t = {"loss_history": [3.0, 2.0, 1.5], "graph_history": [0.0, 0.0, 0.0]}
    ax = pl.loss(t)
    assert ax.get_yscale() == "symlog"
    assert _curves(ax, 3) == [[3.0, 2.0, 1.5], [0.0, 0.0, 0.0]]
    assert pl.loss(t, log=False).get_yscale() == "linear"


def test_loss_of_a_fitted_model(toy_model):
    ax = pl.loss(toy_model)
    assert list(ax.get_lines()[0].get_ydata()) == list(toy_model.training["loss_history"])


def test_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="loss_history"):
        pl.loss({"loss_history": []})
    with pytest.raises(ValueError, match="recon_history has 1 epochs"):
        pl.loss({"loss_history": [1.0, 2.0], "recon_history": [1.0]})
    with pytest.raises(ValueError, match=r"\.training"):
        pl.loss(42)


REPORT = {
    "source": "edges.tsv",
    "n_genes": 100,
    "n_genes_with_edges": 60,
    "n_edges": 300,
    "n_perturbed": 10,
    "perturbed_without_edges": ["A", "B"],
    "perturbed_not_measured": ["C"],
}


def test_prior_coverage_bars_are_the_counts():
    ax = pl.prior_coverage(REPORT)
    assert [p.get_width() for p in ax.patches] == [60, 40, 7, 2, 1]
    assert "300 edges" in ax.get_title()
    labels = dict(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels()), strict=True))
    assert labels[0] == "perturbed, not measured"  # bottom bar
    assert labels[4] == "genes with an edge"
    assert not ax.child_axes
    assert ax.get_xscale() == "log"  # 1 next to 60


def test_prior_coverage_linear_when_counts_are_alike():
    report = {
        **REPORT,
        "n_perturbed": 0,
        "perturbed_without_edges": [],
        "perturbed_not_measured": [],
    }
    ax = pl.prior_coverage(report)
    assert [p.get_width() for p in ax.patches] == [60, 40]
    assert ax.get_xscale() == "linear"


def test_prior_coverage_histogram_of_degrees_in_an_inset():
    degrees = np.array([0, 1, 1, 2, 3, 5])
    ax = pl.prior_coverage(
        {**REPORT, "n_perturbed": 0, "perturbed_not_measured": []}, degrees=degrees
    )
    assert len(ax.patches) == 2  # no perturbed genes: only the gene bars
    (inset,) = ax.child_axes
    assert sum(p.get_height() for p in inset.patches) == 5  # the genes with an edge


@pytest.mark.parametrize("size", [(7.0, 4.5), (10.0, 4.5)])  # the report's sizes
@pytest.mark.parametrize("perturbed", [True, False])  # log and linear bar scales
def test_prior_coverage_inset_inside_the_figure_and_clear_of_the_bars(size, perturbed):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    report = REPORT if perturbed else {**REPORT, "n_perturbed": 0, "perturbed_not_measured": []}
    fig = Figure(figsize=size, layout="constrained")
    ax = pl.prior_coverage(report, degrees=np.arange(100) % 7, ax=fig.subplots())
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    (inset,) = ax.child_axes
    box, page = inset.get_tightbbox(renderer), fig.bbox
    # nothing of the inset (its title included) is cut off by the figure's edge
    assert page.x0 <= box.x0
    assert box.x1 <= page.x1
    assert page.y0 <= box.y0
    assert box.y1 <= page.y1
    # the longest bar and its count end left of the inset
    right = max(t.get_window_extent(renderer).x1 for t in ax.texts)
    assert right < box.x0
    assert max(p.get_window_extent(renderer).x1 for p in ax.patches) < box.x0


def test_prior_coverage_rejects_bad_input():
    with pytest.raises(ValueError, match="n_edges"):
        pl.prior_coverage({"n_genes": 1, "n_genes_with_edges": 0})
    with pytest.raises(ValueError, match="n_genes_with_edges"):
        pl.prior_coverage({**REPORT, "n_genes_with_edges": 101})
    with pytest.raises(ValueError, match="degrees"):
        pl.prior_coverage(REPORT, degrees=np.array([1, -1]))


def test_loss_title_wraps_a_long_stop_reason():
    reason = (
        "reached max_epochs=2000 before converging (the last check cycle still improved the "
        "objective by 1.39e-03; tolerance 0.001)"
    )
    ax = pl.loss({**TRAINING, "stop_reason": reason})
    lines = ax.get_title().split("\n")
    assert max(map(len, lines)) <= 72
    assert " ".join(lines[1:]) == f"stopped: {reason}"
