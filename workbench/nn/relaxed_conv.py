"""Relaxed group convolution (Wang, Walters & Yu 2022) on the SetConv grid.

Each layer holds ``L`` filter banks; the output is ``sum_l w_l(x) (Psi_l * z)(x)`` with mixing
weights ``w_l(x) = 1/L + t_l(x)``, where ``t`` is a box-masked, per-task dropped-out MLP of position
(:class:`~workbench.nn.fixed_inputs.FixedInputs`, held by the model and evaluated on the grid: the
body gets its values). With ``t = 0`` every location mixes the banks equally, which is one plain
convolution: the strict component.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from workbench.nn.cnn import GridConv, from_nchw, layer_dilations, to_nchw


class RelaxedConvBody(nn.Module):
    """``depth`` relaxed convolutions with ReLU: ``[b, n.., c_in] -> [b, n.., channels]``.

    ``symmetric``: mirror-symmetric banks (1-D), so that equal mixing is reflection-equivariant (T+flip)."""

    def __init__(
        self,
        dim: int,
        c_in: int,
        channels: int,
        depth: int,
        kernel: int,
        banks: int = 3,
        dilations: tuple[int, ...] | None = None,
        symmetric: bool = False,
    ) -> None:
        super().__init__()
        self.dim, self.banks, self.channels = dim, banks, channels
        #: Channels of mixing weights the body reads from its fixed inputs ``t``.
        self.n_mixing = banks * depth
        # Saved runs from before the mixer moved out of the body hold it twice (``fixed.*`` and
        # ``body.mixer.*``, the same tensors): the copy under the body is dropped on load.
        self._register_load_state_dict_pre_hook(_drop_old_mixer)
        dilations = layer_dilations(dilations, depth)
        self.convs = nn.ModuleList(
            GridConv(dim, c_in if i == 0 else channels, banks * channels, kernel, symmetric, dilations[i])
            for i in range(depth)
        )

    def forward(self, h: Tensor, t: Tensor | None = None) -> Tensor:
        """Grid features ``h [b, n.., c_in]`` and mixing inputs ``t [b, n.., banks * depth]`` (None: all
        zero, equal mixing) -> ``[b, n.., channels]``."""
        if t is None:
            t = h.new_zeros((*h.shape[:-1], self.n_mixing))
        if t.shape[-1] != self.n_mixing:
            raise ValueError(
                f"relaxed convolution needs banks * depth = {self.n_mixing} mixing channels, "
                f"got {t.shape[-1]}"
            )
        w = 1.0 / self.banks + t  # [b, n.., banks * depth]
        w = w.unflatten(-1, (len(self.convs), self.banks))
        z = h
        for i, conv in enumerate(self.convs):
            out = from_nchw(conv(to_nchw(z)), self.dim).unflatten(-1, (self.banks, self.channels))
            z = (out * w[..., i, :, None]).sum(-2)
            if i < len(self.convs) - 1:
                z = torch.relu(z)
        return z


def _drop_old_mixer(state_dict: dict, prefix: str, *args: object) -> None:
    """Load-time mapping for saved runs that hold the mixer under the body too (a duplicate)."""
    for key in [k for k in state_dict if k.startswith(prefix + "mixer.")]:
        del state_dict[key]
