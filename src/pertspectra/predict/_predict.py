"""Label-level predictions as tidy tables (labels x genes)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..design import CONTROL_LABEL

if TYPE_CHECKING:
    import pandas as pd

    from ..model._fitted import FittedModel


def predict(model: FittedModel, labels: Iterable[object]) -> pd.DataFrame:
    """Expected expression of ``labels`` (labels x genes).

    Parameters
    ----------
    model
        A fitted model (:func:`pertspectra.train.fit` or :func:`pertspectra.model.load_model`).
    labels
        Labels made of seen perturbations: ``"A"``, ``"A+B"`` (also unseen combinations under
        the ``"gene"`` encoding), ``"ctrl"``; any spelling the model's label parser accepts.

    Returns
    -------
    DataFrame indexed by the labels as given (``label``), one column per gene (``gene``).

    Raises
    ------
    KeyError
        Naming an unseen single perturbation (or any unseen label under the ``"label"``
        encoding).

    Examples
    --------
    >>> import pertspectra as ps
    >>> stats = ps.stats.compute_group_stats(
    ...     ps.datasets.toy(seed=0), perturbation_key="perturbation", progress=False
    ... )
    >>> model = ps.train.fit(stats, n_factors=4, max_epochs=50, progress=False)
    >>> ps.predict.predict(model, ["G0+G1", "ctrl"]).shape
    (2, 60)
    """
    return model.predict(labels)


def predict_change(
    model: FittedModel, labels: Iterable[object], *, reference: str = CONTROL_LABEL
) -> pd.DataFrame:
    """Predicted change of ``labels`` from ``reference`` (default the control), labels x genes.

    Parameters
    ----------
    model
        A fitted model.
    labels
        Labels to predict (see :func:`predict`).
    reference
        Label whose prediction is subtracted.

    Returns
    -------
    ``predict(model, labels) - predict(model, [reference])``, row by row.
    """
    pred = model.predict(labels)
    ref = model.predict([reference]).iloc[0]
    return pred - ref
