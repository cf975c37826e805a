"""Simple baselines every prediction is compared with.

- ``control``: no change, the control mean;
- ``mean``: the mean of the training perturbations' means (the Ahlmann-Eltze et al. baseline);
- ``additive``: for ``A+B``, ``ctrl + (A - ctrl) + (B - ctrl)`` from observed training means
  (singles; a label whose singles are not all seen gets the control mean for the missing part).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from ..design import CONTROL_LABEL, LabelParser


def baseline_predictions(
    train_means: pd.DataFrame,
    labels: Iterable[str],
    *,
    parser: LabelParser | None = None,
    control_label: str = CONTROL_LABEL,
) -> dict[str, pd.DataFrame]:
    """Predictions of the control, mean and additive baselines for ``labels``.

    Parameters
    ----------
    train_means
        Observed training means (canonical labels x genes), control included.
    labels
        Labels to predict.
    parser
        Label conventions (to split ``"A+B"``).
    control_label
        Row of ``train_means`` holding the control mean.

    Returns
    -------
    ``{"control": df, "mean": df, "additive": df}``, each labels x genes.
    """
    parser = parser or LabelParser()
    labels = list(labels)
    if control_label not in train_means.index:
        msg = f"training means lack the control row {control_label!r}"
        raise KeyError(msg)
    ctrl = train_means.loc[control_label]
    perts = train_means.drop(index=control_label)
    index = pd.Index(labels, name="label")
    control = pd.DataFrame(
        [ctrl.to_numpy()] * len(labels), index=index, columns=train_means.columns
    )
    mean = pd.DataFrame(
        [perts.mean(axis=0).to_numpy()] * len(labels), index=index, columns=train_means.columns
    )
    rows = []
    for lab in labels:
        pred = ctrl.copy()
        for tok in parser.tokens(lab):
            if tok in train_means.index:
                pred = pred + (train_means.loc[tok] - ctrl)
        rows.append(pred.to_numpy())
    additive = pd.DataFrame(rows, index=index, columns=train_means.columns)
    return {"control": control, "mean": mean, "additive": additive}
