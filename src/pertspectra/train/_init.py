r"""Where a fit starts: the authors' random draw, or the labels' own means.

The group means :math:`\mu_c = S_c / w_c` are known before the first epoch, and they are the
reconstruction's optimum (the saturated fit). With at least as many factors as labels, the
effects parametrization reproduces them exactly with one factor per label:

.. math::

    W_{cj} = \mu_{cj} / T_j,\quad T_j = \textstyle\sum_c \mu_{cj},\qquad
    \nu_j + \delta = T_j / s,\qquad h_c P = s\, e_c,

with :math:`s = \max_j T_j / 0.9` (so every :math:`\nu_j \le 0.9`): then
:math:`(\nu_j + \delta)(h_c P) W_{\cdot j} = \mu_{cj}`. ``P`` is the least-squares solution of
:math:`H P = s I` over the perturbation and ``basal`` columns (``ctrl`` is zero under
``"effects"``), with the combinations' rows weighted :data:`COMBINATION_WEIGHT`: exact for the
control and the single perturbations (``basal`` is the control label's factor, each
perturbation its own factor minus the control's), so a combination, whose design row is the sum
of its singles', starts at the additive prediction :math:`\mu_A + \mu_B - \mu_{ctrl}` (its own
factor holds its share of ``W`` but is not reached until the fit moves ``P``). Factors beyond the labels keep the seed's random logits
with a gene weight of about 1e-6 each, so they can still take part; ``B`` and :math:`\kappa`
start near zero (their random draw shifted by -8 on the logit scale), which is the graph term's
optimum when there is no prior (every pair a non-edge). So without a prior the fit starts at its
optimum up to clamps (the ``floor`` of the effects mean, :math:`\nu_j \ge 10^{-6}`, which binds
for a gene whose means sum to less than :math:`\delta s`: its start, and its fit, stay above
its data; Schraivogel has three such genes, see ``docs/optimization.md``) when every
label is the control or a single perturbation, and at the additive rule for combinations; with a prior the graph term's arrangement of genes over
factors is what the optimiser has to find, and a start spread over one factor per label is a
poor one (``docs/optimization.md``), so ``"auto"`` uses the random start there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

    from .._types import Init
    from ..model._module import PertSpectraModule

#: Logit shift of ``B`` and ``kappa`` at a means start (sigmoid(-8) = 3.4e-4).
CLOSED_LOGIT = -8.0
#: Gene weight of a factor that no label owns at a means start.
SPARE_WEIGHT = 1e-6
#: Row weight of a combination in the least-squares start of ``P`` (control and singles: 1).
COMBINATION_WEIGHT = 1e-3


def resolve_init(
    init: Init, *, parametrization: str, has_prior: bool, n_factors: int, n_labels: int
) -> Literal["random", "means"]:
    """The start a fit uses: ``"auto"`` is ``"means"`` where it starts at the optimum.

    ``"means"`` needs the effects parametrization and at least as many factors as labels;
    ``"auto"`` picks it when those hold and no prior graph is attached. ``init`` is one of
    the three (:class:`~pertspectra.train.TrainConfig` checks it).

    Raises
    ------
    ValueError
        When ``"means"`` is asked for where it cannot be built.
    """
    possible = parametrization == "effects" and n_factors >= n_labels
    if init == "means" and not possible:
        why = (
            "the paper parametrization starts as the authors' (random)"
            if parametrization != "effects"
            else f"it needs one factor per label: {n_factors} factors for {n_labels} labels"
        )
        msg = f"init='means' cannot be used here: {why}; use init='random'"
        raise ValueError(msg)
    if init == "auto":
        return "means" if possible and not has_prior else "random"
    return init


def means_init(
    module: PertSpectraModule,
    design: torch.Tensor,
    *,
    weighted_sum: torch.Tensor,
    weight: torch.Tensor,
) -> None:
    """Set ``module``'s parameters (in place) so that it starts at the labels' means.

    Parameters
    ----------
    module
        A freshly initialised module (effects parametrization, factors >= labels); its random
        draw supplies the spare factors' logits and ``B``'s and ``kappa``'s.
    design
        Design rows of the labels (labels x design columns; ``ctrl`` and ``basal`` last).
    weighted_sum
        Per-label weighted sums ``S`` (labels x genes).
    weight
        Per-label weights ``w``.
    """
    import torch

    n_labels = weighted_sum.shape[0]
    n_factors = module.w_free.shape[0]
    if n_factors < n_labels or module.config.parametrization != "effects":  # resolve_init's job
        msg = f"a means start needs the effects parametrization and >= {n_labels} factors"
        raise ValueError(msg)
    with torch.no_grad():
        mu = (weighted_sum.double() / weight.double()[:, None]).clamp_min(0).cpu()
        total = mu.sum(0)
        scale = float(total.max()) / 0.9 if float(total.max()) > 0 else 1.0
        # the spare factors keep the seed's random logits (their symmetry broken), shifted to
        # a weight of about SPARE_WEIGHT; the labels' factors get the data's shares exactly
        draw = module.w_free.detach().double().cpu()
        share = SPARE_WEIGHT * torch.exp(draw - draw.mean(0))
        share[:n_labels] = (mu / total.clamp_min(1e-300)).clamp_min(1e-12)
        norm = share.sum(0)  # 1 + the spare factors' weight: the gene scaling takes it back
        logits = torch.log(share / norm)
        nu = (total * norm / scale - float(module.config.delta)).clamp(1e-6, 1 - 1e-6)
        target = torch.zeros(n_labels, n_factors, dtype=torch.float64)
        target[torch.arange(n_labels), torch.arange(n_labels)] = scale
        free = torch.cat([design[:, :-2], design[:, -1:]], dim=1).double().cpu()
        # control and singles exactly; a combination's row (a sum of its singles') as closely
        # as the singles leave room for (its own factor is not reachable at the start)
        rows = torch.where(free[:, :-1].sum(1) > 1, COMBINATION_WEIGHT, 1.0)
        sol = torch.linalg.lstsq(
            rows[:, None] * free, rows[:, None] * target, driver="gelsd"
        ).solution
        p = module.p_free.detach().double().cpu().clone()
        basal = sol[-1].clamp_min(scale * 1e-12)  # positive (the exp of a free parameter)
        # every design row holds basal, so the perturbation rows give back what the clamp added
        p[:-2] = sol[:-1] - (basal - sol[-1])
        p[-1] = torch.log(basal)
        dev, dt = module.w_free.device, module.w_free.dtype
        module.p_free.copy_(p.to(dev, dt))
        module.w_free.copy_(logits.to(dev, dt))
        module.gene_scale_free.copy_(torch.log(nu / (1 - nu)).to(dev, dt))
        module.b_free.add_(CLOSED_LOGIT)
        if isinstance(module.kappa_free, torch.nn.Parameter):
            module.kappa_free.add_(CLOSED_LOGIT)
