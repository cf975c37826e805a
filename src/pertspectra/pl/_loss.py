r"""Training curve: the objective and its two parts per epoch, with the learning-rate steps.

The objective is :math:`\mathcal{L} = \lambda\,\mathcal{L}_\text{recon} + \mathcal{L}_\text{graph}`
(see :mod:`pertspectra.model`); ``training["loss_history"]`` holds :math:`\mathcal{L}` per
epoch and ``recon_history`` / ``graph_history`` its parts.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ._common import new_axes
from ._style import METHOD_COLORS, PROFILE_COLORS, REFERENCE_COLOR

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_PARTS = (
    ("loss_history", "total objective", METHOD_COLORS["model"], "-"),
    ("recon_history", "reconstruction", PROFILE_COLORS["observed"], "--"),
    ("graph_history", "graph", METHOD_COLORS["ceiling"], "-."),
)


def _as_training(training: Mapping[str, Any] | Any) -> Mapping[str, Any]:
    if isinstance(training, Mapping):
        return training
    inner = getattr(training, "training", None)
    if isinstance(inner, Mapping):
        return inner
    msg = (
        "training must be a model's training dict or an object with a .training dict, "
        f"got {type(training).__name__}"
    )
    raise ValueError(msg)


def loss(training: Mapping[str, Any] | Any, *, log: bool = True, ax: Axes | None = None) -> Axes:
    """Plot the training loss per epoch, its parts and the learning-rate steps.

    Parameters
    ----------
    training
        A fitted model's ``training`` dict, or the model itself (anything with a ``.training``
        dict, e.g. :class:`~pertspectra.model.FittedModel`). Uses ``loss_history`` (the
        objective per epoch), and when present ``recon_history`` and ``graph_history`` (its
        parts, same length), ``lr_steps`` (epochs after which the learning rate stepped down),
        ``learning_rates`` (the schedule: rate ``i + 1`` applies after ``lr_steps[i]``),
        ``convergence["checks"]`` (each check cycle's first epoch, marked with its relative
        improvement) and ``stop_reason``.
    log
        Logarithmic y axis. The values are drawn as they are (never shifted): a plain log scale
        when every value drawn is positive, otherwise a symmetric log scale (``symlog``) whose
        linear band is the smallest non-zero ``|value|``, so a graph term that is 0 (no prior)
        or a negative reconstruction term can still be shown.
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on: one line per part (total first), a dotted vertical line per learning-
    rate step labelled with the new rate, and the stop reason in the title.
    """
    t = _as_training(training)
    total = np.asarray(t.get("loss_history") or [], dtype=float)
    if total.size == 0:
        msg = "training has no loss_history (or it is empty): nothing to plot"
        raise ValueError(msg)
    series = []
    for key, label, color, style in _PARTS:
        values = np.asarray(t.get(key) or [], dtype=float)
        if values.size == 0:
            continue
        if values.size != total.size:
            msg = f"{key} has {values.size} epochs but loss_history has {total.size}"
            raise ValueError(msg)
        series.append((values, label, color, style))
    ax = new_axes(ax, (7.5, 4.0))
    epochs = np.arange(1, total.size + 1)
    for values, label, color, style in series:
        ax.plot(epochs, values, ls=style, color=color, lw=1.5, label=label)
    if log:
        finite = np.concatenate([v[np.isfinite(v)] for v, *_ in series])
        if finite.size and np.all(finite > 0):
            ax.set_yscale("log")
        elif finite.size and np.any(finite != 0):
            ax.set_yscale("symlog", linthresh=float(np.min(np.abs(finite[finite != 0]))))
    rates = list(t.get("learning_rates") or [])
    marks = [
        (step, ":", 0.98, "top", f"lr → {rates[i + 1]:g}" if i + 1 < len(rates) else "lr step")
        for i, step in enumerate(t.get("lr_steps") or [])
    ]
    marks += [
        (c["first_epoch"], "--", 0.02, "bottom", f"check: {c['improvement']:.1e}")
        for c in (t.get("convergence") or {}).get("checks") or []
        if c["first_epoch"] <= total.size
    ]
    for epoch, style, y, va, text in marks:
        ax.axvline(epoch, ls=style, lw=1, color=REFERENCE_COLOR)
        ax.text(
            epoch,
            y,
            f" {text}",
            transform=ax.get_xaxis_transform(),
            rotation=90,
            va=va,
            ha="right",
            fontsize="x-small",
            color="#555555",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss" + (" (log scale)" if log else ""))
    reason = t.get("stop_reason")
    title = f"Training loss, {total.size} epochs"
    if rates:
        title += f", initial lr {rates[0]:g}"
    if reason:  # wrapped: the reasons run to 150 characters, wider than the axes
        title += "\n" + "\n".join(textwrap.wrap(f"stopped: {reason}", width=72))
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small", frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, which="major")
    return ax
