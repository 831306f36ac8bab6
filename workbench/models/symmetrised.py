"""A free neural process made equivariant in expectation by probabilistic symmetrisation.

Kim et al., "Learning Probabilistic Symmetrization for Architecture Agnostic Equivariance" (NeurIPS
2023): average a free model f over group elements drawn from a small equivariant network,

    prediction(D)(x) = E_{g ~ p(.|D)} [ g . f(g^-1 . D)(g^-1 . x) ].

An element g is a shift with, for groups that have them, a rotation or reflection A of the point group
(:class:`~workbench.nn.shift_sampler.ShiftSampler`); the outputs are scalars, which g leaves as they
are, so each element moves the context and the targets into its frame, asks the free model there, and
the results are averaged: over ``n`` noise draws of the shift, and over every element of the point group
with the sampler's weights (enumerated, not sampled: a few elements, and exact). Because
p(h g | h D) = p(g | D), the expectation is exactly equivariant (moved data, brought into the moved
frame, are the same data) and a finite average is equivariant up to its Monte-Carlo error.

**Strength** s mixes a point mass at the identity into the learned distribution: with weight s the
free model predicts as it is (no shift), with weight 1 - s it is symmetrised. s = 0 is equivariant in
expectation, s = 1 is the plain free model (its prediction, exactly); in between, the free model may
use absolute position where that helps, and only that share breaks the symmetry. ``fixed_inputs=False``
gives the strict component: the symmetrised share alone (so ``breaking`` maps and ``delta_equiv`` show
what the identity's share changes).

**The mixture as one Gaussian.** Averaging predictive distributions gives a mixture of Normals; the
model's interface is one Normal per target, so the mixture is moment-matched: the mean of the means,
and the variance = the mean of the variances + the variance of the means (weighted by the mixture
weights). Training maximises the log-likelihood of that Gaussian.

**Samples and randomness.** ``n_train`` draws per task in training (torch's global RNG, independent
per task), ``n_predict`` draws in evaluation mode, from a generator seeded with :data:`PREDICT_SEED`
at every call and shared by the tasks of a batch: predictions are deterministic, a task predicts the
same in any batch, and, because a shifted context gets the same noise, evaluation-mode predictions are
exactly equivariant (to float rounding), not only in expectation (to every element of the group,
45-degree turns of T+C8 included: no grid is turned, only the data). They are settings of the model, not
``Experiment`` fields (they change cost and Monte-Carlo error, not the weights): set
``model.n_predict`` or pass ``forward(..., n_samples=, generator=)``. The draws on a GPU differ from
those on a CPU.

**Cost**: a draw is one pass of the free model per point-group element (1 for T, 2 for T+flip, 4 to
16 for T+C4 ... T+D8), all in one batch of ``n * k * b`` tasks.

**A task without context points** has no data to place a frame on; its frame is put at each target
(g = x_t + noise), so every target gets the same prediction: the only consistent equivariant answer,
as for a strict ConvCNP.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Normal

from workbench.models.base import NeuralProcess, mask_or_ones
from workbench.nn.shift_sampler import ShiftSampler
from workbench.task import Box

#: Default draws per task: a few in training (each one is a forward pass of the free model), more
#: when predicting (Monte-Carlo error about 1 / sqrt(n)).
N_TRAIN = 4
N_PREDICT = 16
#: The seed of the evaluation-mode draws (a fresh generator at every call: deterministic predictions).
PREDICT_SEED = 0


class SymmetrisedNP(NeuralProcess):
    """The free model ``base`` averaged over shifts from ``sampler``; the identity has weight ``strength``."""

    def __init__(
        self,
        base: NeuralProcess,
        sampler: ShiftSampler,
        box: Box,
        strength: float,
        *,
        n_train: int = N_TRAIN,
        n_predict: int = N_PREDICT,
    ) -> None:
        super().__init__()
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength = {strength!r} must be in [0, 1]")
        for name, value in (("n_train", n_train), ("n_predict", n_predict)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} = {value!r} must be a positive integer")
        self.base, self.sampler = base, sampler
        self.strength, self.n_train, self.n_predict = float(strength), n_train, n_predict
        # Frames are centred on the box centre, where the free model's fixed inputs live (they are
        # zero outside the box); any constant keeps the average equivariant.
        centre = torch.tensor([(lo + hi) / 2 for lo, hi in box])
        self.register_buffer("box_centre", centre, False)

    # The free model's internal grid (ConvCNP) is the wrapper's: runs record and restore it.
    @property
    def grid_centre(self) -> str | None:  # type: ignore[override]
        """Placement of the free model's internal grid (None: it has none)."""
        return getattr(self.base, "grid_centre", None)

    @property
    def grid_span(self) -> float | None:  # type: ignore[override]
        """Width of the free model's internal grid in box widths (None: it has none)."""
        return getattr(self.base, "grid_span", None)

    @property
    def n_grid(self) -> int:
        """Points per axis of the free model's grid (AttributeError when it has none, like the model)."""
        return self.base.n_grid

    @property
    def spacing(self) -> float:
        """Spacing of the free model's grid (AttributeError when it has none)."""
        return self.base.spacing

    def set_grid(self, centre: str, span: float | None = None) -> None:
        """Place the free model's internal grid (see :meth:`ConvCNP.set_grid`)."""
        self.base.set_grid(centre, span)

    @property
    def has_fixed_inputs(self) -> bool:
        """Whether turning the identity's share off changes anything (strength > 0)."""
        return self.strength > 0.0

    def forward(
        self,
        xc: Tensor,
        yc: Tensor,
        xt: Tensor,
        mask_c: Tensor | None = None,
        *,
        fixed_inputs: bool = True,
        n_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Normal:
        """``xc [b, nc, dx]``, ``yc [b, nc, dy]``, ``xt [b, nt, dx]`` -> Normal ``[b, nt, dy]``.

        ``fixed_inputs=False``: the symmetrised share alone (the strict component). ``n_samples``:
        draws per task (default ``n_train`` in training, ``n_predict`` in evaluation); ``generator``:
        the draws' source (default torch's in training, a fresh one seeded :data:`PREDICT_SEED` in
        evaluation).
        """
        s = self.strength if fixed_inputs else 0.0
        if s == 1.0:
            return self.base(xc, yc, xt, mask_c)
        mask_c = mask_or_ones(xc, mask_c)
        n = n_samples or (self.n_train if self.training else self.n_predict)
        shared = not self.training
        if generator is None and shared:
            generator = torch.Generator(device=xc.device).manual_seed(PREDICT_SEED)
        centre, probs, has = self.sampler.frame(xc, yc, mask_c)  # [b, dx], [b, k], [b]
        rows = 1 if shared else xc.shape[0]
        eps = self.sampler.noise(n, rows, device=xc.device, dtype=xc.dtype, generator=generator)
        noise = (self.sampler.scale.to(xc.dtype) * eps)[:, None, :, None]  # [n, 1, b or 1, 1, dx]
        point = self.sampler.point.to(xc.dtype)  # [k, dx, dx]
        b, nc, dx = xc.shape
        nt, k = xt.shape[1], point.shape[0]
        # g^-1 . x = A^T (x - m) - sigma * eps, placed at the box centre, where the free model's fixed
        # inputs live (any constant keeps the average equivariant). Rows are points: (x - m) @ A.
        box_centre = self.box_centre.to(xc.dtype)
        zero = torch.zeros((), dtype=xc.dtype, device=xc.device)
        rel_c = torch.einsum("bnd,kde->kbne", xc - centre[:, None], point)
        xc_g = torch.where(mask_c[..., None], rel_c - noise + box_centre, zero)  # [n, k, b, nc, dx]
        # No context: the frame sits at each target (x - m = 0), see the module docstring.
        rel_t = torch.where(has[:, None, None], xt - centre[:, None], zero)
        xt_g = torch.einsum("bnd,kde->kbne", rel_t, point) - noise + box_centre  # [n, k, b, nt, dx]
        # All draws and point-group elements in one pass of the free model, as n * k * b tasks.
        pred = self.base(
            xc_g.reshape(n * k * b, nc, dx),
            yc.expand(n * k, *yc.shape).reshape(n * k * b, nc, yc.shape[-1]),
            xt_g.reshape(n * k * b, nt, dx),
            mask_c.expand(n * k, b, nc).reshape(n * k * b, nc),
        )
        dy = pred.mean.shape[-1]
        means = pred.mean.reshape(n * k, b, nt, dy)
        variances = pred.variance.reshape(n * k, b, nt, dy)
        # Each draw has weight (1 - s) / n, shared among the point group by its weights.
        weights = ((1.0 - s) / n * probs.T).expand(n, k, b).reshape(n * k, b)
        if s > 0.0:
            ident = self.base(xc, yc, xt, mask_c)
            means = torch.cat([means, ident.mean[None]])
            variances = torch.cat([variances, ident.variance[None]])
            weights = torch.cat([weights, weights.new_full((1, b), s)])
        return moment_match(means, variances, weights)


def moment_match(means: Tensor, variances: Tensor, weights: Tensor) -> Normal:
    """The Normal with the mean and variance of the mixture sum_k weights[k] N(means[k], variances[k]).

    ``means``, ``variances`` ``[k, b, nt, dy]``, ``weights [k]`` or ``[k, b]`` (summing to 1 over k) ->
    Normal ``[b, nt, dy]``: mean of the means, variance = mean of the variances + variance of the means.
    """
    w = weights.reshape(*weights.shape, *([1] * (means.dim() - weights.dim())))
    mean = (w * means).sum(0)
    # Spread about the mixture mean (not E[mu^2] - mean^2): no cancellation, never negative.
    var = (w * (variances + (means - mean) ** 2)).sum(0)
    return Normal(mean, var.sqrt())
