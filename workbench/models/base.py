"""A neural process is likelihood(decoder(body(encoder(context), targets)))."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from workbench.nn.fixed_inputs import FixedInputs
from workbench.task import Task

if TYPE_CHECKING:
    from workbench.models.relaxations import Relaxation


class NeuralProcess(nn.Module):
    """Base class: subclasses implement :meth:`forward`; everything else is shared."""

    #: Placement of an internal grid (``"context"`` or ``"all"``, see :class:`ConvCNP`); None: the
    #: model has none. Not a weight, but it changes what the weights predict, so runs record it.
    grid_centre: str | None = None
    grid_span: float | None = None

    def __init__(self) -> None:
        super().__init__()
        #: The learned functions of position that break the symmetry, t(x): the fixed inputs of the
        #: 'fixed-inputs' relaxation (and of a free conv model), the mixing weights of 'relaxed-conv'.
        self.fixed: FixedInputs | None = None
        #: The relaxation plug-in the model was built with (``workbench.models.relaxations``).
        self.relaxation: Relaxation | None = None

    def forward(
        self, xc: Tensor, yc: Tensor, xt: Tensor, mask_c: Tensor | None = None, *, fixed_inputs: bool = True
    ) -> Normal:
        """Predictive ``Normal`` at ``xt [b, nt, dx]`` given ``xc [b, nc, dx]``, ``yc [b, nc, dy]``."""
        raise NotImplementedError

    def predict(self, task: Task, *, fixed_inputs: bool = True) -> Normal:
        """Predictive distribution for a :class:`Task` (cast to the model's dtype and device)."""
        task = task.for_model(self)
        return self(task.xc, task.yc, task.xt, task.mask_c, fixed_inputs=fixed_inputs)

    def loglik(self, task: Task, *, fixed_inputs: bool = True) -> Tensor:
        """Mean log-likelihood per target for each task, ``[batch]``."""
        if task.yt is None:
            raise ValueError("the task has no target values (yt is None), so no log-likelihood")
        return self.predict(task, fixed_inputs=fixed_inputs).log_prob(task.yt).sum(-1).mean(-1)

    def set_grid(self, centre: str, span: float | None = None) -> None:
        """Place the internal grid (:meth:`ConvCNP.set_grid`); a model without one has nothing to place."""

    def predict_grid(
        self,
        xc: Tensor,
        yc: Tensor,
        t1: Tensor,
        t2: Tensor,
        mask_c: Tensor | None = None,
        *,
        fixed_inputs: bool = True,
    ) -> Normal:
        """The prediction on the product grid ``t1 [m1]`` x ``t2 [m2]`` (2-D) -> Normal ``[b, m1, m2, dy]``.

        Here ``forward`` at the flattened grid points; the ConvCNP factorises it per axis.
        """
        dim_x = getattr(self, "dim_x", xc.shape[-1])
        if dim_x != 2:
            raise ValueError(f"predict_grid is for 2-D models; this one has dim_x = {dim_x}")
        g1, g2 = torch.meshgrid(t1, t2, indexing="ij")
        xt = torch.stack([g1, g2], -1).reshape(1, -1, 2).to(xc.dtype).expand(xc.shape[0], -1, -1)
        dist = self(xc, yc, xt, mask_c, fixed_inputs=fixed_inputs)
        shape = (xc.shape[0], len(t1), len(t2), -1)
        return Normal(dist.mean.reshape(shape), dist.stddev.reshape(shape))

    def penalty(self) -> Tensor:
        """The relaxation's term for the training loss (0 unless it has one); add it to the loss."""
        if self.relaxation is None:
            return torch.zeros((), device=next(self.parameters()).device)
        return self.relaxation.penalty(self)

    @property
    def has_fixed_inputs(self) -> bool:
        """Whether turning fixed inputs off changes anything (False for strict models)."""
        return self.fixed is not None and self.fixed.n_channels > 0

    def fixed_input_values(self, x: Tensor) -> Tensor:
        """The learned fixed inputs ``t(x)`` at points ``x [b, n, dx]`` -> ``[b, n, B]`` (evaluation mode)."""
        if self.fixed is None:
            return x.new_zeros((*x.shape[:-1], 0))
        was = self.fixed.training
        self.fixed.eval()
        try:
            with torch.no_grad():
                return self.fixed(x)
        finally:
            self.fixed.train(was)


def mask_or_ones(xc: Tensor, mask_c: Tensor | None) -> Tensor:
    """The context mask, all True when none is given, ``[b, nc]``."""
    if mask_c is None:
        return torch.ones(xc.shape[:2], dtype=torch.bool, device=xc.device)
    return mask_c
