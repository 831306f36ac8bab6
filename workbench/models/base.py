"""A neural process is likelihood(decoder(body(encoder(context), targets)))."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from workbench.nn.fixed_inputs import FixedInputs
from workbench.task import Task


class NeuralProcess(nn.Module):
    """Base class: subclasses implement :meth:`forward`; everything else is shared."""

    def __init__(self) -> None:
        super().__init__()
        #: Fixed inputs when the relaxation is 'fixed-inputs' (or the mixing weights of relaxed conv).
        self.fixed: FixedInputs | None = None

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
