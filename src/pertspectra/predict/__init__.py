r"""Prediction: expected expression of any label made of seen perturbations, unseen combinations too.

The formula (:func:`expected_expression`) is written once, in numpy:

.. math::

    \mu(h) = (\nu + \delta) \odot (hP)W

for the design row :math:`h` of a label (``basal`` plus one column per perturbed gene), so
``"A+B"`` is predicted from the rows of ``A`` and ``B`` even when no cell received both.
:meth:`pertspectra.model.FittedModel.predict` and :func:`predict` both use it.
"""

from __future__ import annotations

from ..model._mean import expected_expression
from ._predict import predict, predict_change

__all__ = ["expected_expression", "predict", "predict_change"]
