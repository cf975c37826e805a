r"""Where a fit starts: the authors' random draw, the labels' own means, or the prior's communities.

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
poor one (``docs/optimization.md``), so ``"auto"`` does not use it there.

With a prior graph, a *communities* start (:func:`communities_init`) arranges the genes as
the graph suggests before the first epoch: the connected genes are split into communities by
degree-regularized spectral clustering of the prior (:func:`prior_communities`;
deterministic, one community per factor at most), each gene's ``W`` logit leads on its
community's factor by :data:`COMMUNITY_LEAD`, and ``B`` starts as closed communities (diagonal
logits +:data:`COMMUNITY_LOGIT`, off-diagonal -:data:`COMMUNITY_LOGIT`). On the CRISPR panels
(74-366 genes) and at Norman size (5,000 genes, a STRING-structured prior) it ends lower than
the random start, mostly in 1,250 epochs, and five seeds agree within 0.5%; on Wessels (2,000
genes) five seeds end 0.69% apart, on average level with the random start, which takes two to
eight times the epochs. ``"auto"`` uses it whenever a prior is attached
(``docs/optimization.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

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
#: Logit of ``B`` at a communities start: +this on the diagonal, -this off it (closed
#: communities: sigmoid(12) = 1 - 6e-6).
COMMUNITY_LOGIT = 12.0
#: How far a gene's ``W`` logit leads on its community's factor at a communities start.
COMMUNITY_LEAD = 8.0

Start = Literal["random", "means", "communities"]


def resolve_init(
    init: Init, *, parametrization: str, has_prior: bool, n_factors: int, n_labels: int
) -> Start:
    """The start a fit uses (every one of its ``n_init`` starts).

    ``"means"`` needs the effects parametrization and at least as many factors as labels;
    ``"communities"`` needs a prior graph. ``"auto"``: without a prior ``"means"`` where it
    can be built, else ``"random"``; with a prior ``"communities"``. Where the prior has
    fewer than four genes with an edge :func:`~pertspectra.train.fit` starts a
    ``"communities"`` fit from the random draw (with a warning when it was asked for).
    ``init`` is one of the four (:class:`~pertspectra.train.TrainConfig` checks it).

    Raises
    ------
    ValueError
        When ``"means"`` or ``"communities"`` is asked for where it cannot be built.
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
    if init == "communities" and not has_prior:
        msg = (
            "init='communities' needs a prior graph (prior= or --prior) and the graph term; "
            "use init='random'"
        )
        raise ValueError(msg)
    if init == "auto":
        if has_prior:
            return "communities"
        return "means" if possible else "random"
    return init


def prior_communities(prior: Any, n_factors: int) -> np.ndarray:
    r"""Each gene's community in the prior graph, by regularized spectral clustering (-1: none).

    The genes with at least one edge are split into at most ``min(n_factors, n // 2)``
    communities (``n`` of them; a community of one gene is not one). The embedding is the
    leading ``k`` eigenvectors of the degree-regularized adjacency
    :math:`D_\tau^{-1/2} A D_\tau^{-1/2}`, :math:`D_\tau = D + \tau I` with :math:`\tau` the
    mean degree (Qin and Rohe, NeurIPS 2013), rows scaled to unit length; genes are assigned by
    column-pivoted QR (Damle, Minden and Ying, 2019), which needs no random restarts. On a
    prior with a dense core the regularization splits the core into small, dense communities
    where the plain normalized Laplacian made a few large ones that closed ``B`` fits badly
    (Wessels' prior: at most 22 genes and 1,389 non-edges inside communities, against 69 and
    3,439; five seeds ended 273,821-275,703, two from the plain communities 276,809 and
    278,143, two from the random start 274,573 and 274,852, ``docs/optimization.md``). The
    eigensolver's start vector is fixed: the same graph gives the same communities whatever the
    fit's seed.

    Parameters
    ----------
    prior
        Gene x gene adjacency (scipy sparse or dense, symmetric, weights in [0, 1]; checked by
        :func:`~pertspectra.priors.check_prior_matrix`, whose errors it raises).
    n_factors
        The fit's factors (the most communities there can be).
    """
    import scipy.sparse as sp

    from ..priors import check_prior_matrix

    adj = check_prior_matrix(prior, source="the prior").astype(np.float64)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    connected = degree > 0
    out = np.full(adj.shape[0], -1, dtype=np.int64)
    n = int(connected.sum())
    k = min(int(n_factors), n // 2)
    if k < 2:  # fewer than four connected genes: nothing to arrange
        return out
    d = degree[connected]
    scale = sp.diags(1.0 / np.sqrt(d + d.mean()))
    vectors = _leading_eigenvectors(scale @ adj[connected][:, connected] @ scale, k)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = _assign_by_pivoted_qr(vectors / np.maximum(norms, 1e-300))
    out[connected] = np.unique(labels, return_inverse=True)[1]  # numbered 0.. without gaps
    return out


def _leading_eigenvectors(matrix: Any, k: int) -> np.ndarray:
    """The ``k`` eigenvectors of the symmetric sparse ``matrix`` with the largest eigenvalues."""
    import scipy.linalg
    import scipy.sparse.linalg

    n = matrix.shape[0]
    v0 = np.random.default_rng(0).uniform(-1.0, 1.0, n)  # deterministic
    try:
        _, vectors = scipy.sparse.linalg.eigsh(matrix, k=k, which="LA", v0=v0)
    except scipy.sparse.linalg.ArpackNoConvergence:  # rare; a dense solver always converges
        dense = matrix.toarray()
        _, vectors = scipy.linalg.eigh(dense, subset_by_index=[n - k, n - 1])
    return vectors


def _assign_by_pivoted_qr(vectors: np.ndarray) -> np.ndarray:
    """Cluster labels from a spectral embedding by column-pivoted QR (Damle et al. 2019).

    The ``k`` pivots of a column-pivoted QR of the embedding's transpose pick ``k`` genes far
    apart in it; the orthogonal matrix closest to their rows (by SVD) rotates the embedding so
    that each cluster lies along one axis, and each gene joins the axis it is largest on.
    """
    import scipy.linalg

    k = vectors.shape[1]
    _, _, pivots = scipy.linalg.qr(vectors.T, pivoting=True, mode="economic")
    left, _, right = scipy.linalg.svd(vectors[pivots[:k]].T)
    return np.abs(vectors @ (left @ right)).argmax(axis=1)


def communities_init(module: PertSpectraModule, communities: np.ndarray) -> None:
    """Set ``module``'s ``W`` and ``B`` (in place) to start from the prior's communities.

    Parameters
    ----------
    module
        A freshly initialised module; its random draw is kept, shifted: ``W``'s logit of each
        gene's community (:func:`prior_communities`) by :data:`COMMUNITY_LEAD` (genes without
        edges keep the draw), ``B``'s by +-:data:`COMMUNITY_LOGIT` (diagonal up, the rest
        down) on a tenth of its draw.
    communities
        Community (a factor index) per gene, -1 for none.
    """
    import torch

    with torch.no_grad():
        n_factors = module.b_free.shape[0]
        if communities.max(initial=-1) >= n_factors:
            msg = f"communities reach factor {communities.max()}, the module has {n_factors}"
            raise ValueError(msg)
        eye = torch.eye(n_factors, dtype=module.b_free.dtype, device=module.b_free.device)
        module.b_free.mul_(0.1).add_(COMMUNITY_LOGIT * (2 * eye - 1))
        genes = np.flatnonzero(communities >= 0)
        lead = torch.zeros_like(module.w_free)
        lead[torch.as_tensor(communities[genes]), torch.as_tensor(genes)] = COMMUNITY_LEAD
        module.w_free.add_(lead)


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
