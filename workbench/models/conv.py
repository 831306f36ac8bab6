"""ConvCNP: SetConv onto a grid -> pointwise MLP (+ fixed inputs) -> CNN -> SetConv -> Gaussian."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from workbench.models.base import NeuralProcess, mask_or_ones
from workbench.nn.cnn import ConvBody
from workbench.nn.fixed_inputs import FixedInputs
from workbench.nn.likelihood import HeteroscedasticNormal
from workbench.nn.mlp import MLP
from workbench.nn.setconv import SetConvDecoder, SetConvEncoder, context_centre, data_centre, make_grid
from workbench.task import Box

#: Default placement of the internal grid: ``"context"`` (centre of the real context points' box)
#: or ``"all"`` (centre of the box of contexts and targets); see :class:`ConvCNP`.
GRID_CENTRE = "context"
#: Default grid width, in widths of the model's box, for the ``"context"`` placement.
GRID_SPAN = 1.0


class ConvCNP(NeuralProcess):
    """Translation-equivariant ConvCNP; its symmetry comes from ``body``, its relaxation from ``fixed``.

    ``body(h, t)`` maps grid features ``h [b, n.., channels]`` and the fixed inputs at the absolute
    grid positions ``t [b, n.., B]`` (None without ``fixed`` or with them off) to
    ``[b, n.., channels]``: a strict body takes ``t`` as B extra channels (zeros when None), a
    relaxed one uses it its own way (see
    :mod:`workbench.nn.cnn`). ``body`` is a module, a callable that builds one (called after the
    encoder, so it draws its initial weights there), or None: a plain CNN of ``depth`` layers of
    ``kernel`` taps (``dilations``: 1-D only).

    **The internal grid** has a fixed spacing and size and is placed per task (``grid_centre``):

    - ``"context"`` (default, :data:`GRID_CENTRE`): centred on the bounding box of the real context
      points. The prediction at a target is then a function of the context and that target only:
      consistent (asking other targets changes nothing) and, for a strict model, exactly equivariant
      (the box centre moves with translations, 90-degree rotations and axis reflections), so the
      strict ceiling D of :mod:`workbench.ceilings` bounds it. ``grid_span`` is the grid's width in
      box widths (default :data:`GRID_SPAN` = 1, the same number of points as the ``"all"`` grid, so
      the same cost): it reaches every context point inside the box with room to spare (the
      context windows of the synthetic worlds are half the box), but a target farther than about
      half a box width from the context's centre lies off the grid; the decoder's weights there
      underflow to 0 and it gets the far-field prediction ``head(0)``, one value whatever its
      position. For a strict model that is a legitimate equivariant answer (it depends on the
      target's position relative to the context only), and it is close to what the CNN gives
      anyway: beyond the receptive field of every context point its input is constant. It
      costs the fixed-inputs model the position information at those few targets (only tasks with
      very few context points, all near one edge). ``grid_span=2`` reaches every target in the box
      from any context centre in the box, at about 1.5x the training time.
    - ``"all"``: centred on the box of contexts *and* targets (the older placement). Equivariant as
      a function of the whole task, but the targets fill their window, so the grid's zero-padded
      edges sit at almost fixed offsets from the window: a "strict" model knows absolute position,
      scores up to D' (above D), and its prediction at a target depends on the other targets.

    Measured (``python bench/bench_worlds.py --lesson``, 3 seeds, 60 CPU-s each, 1024 test tasks;
    ``results/worlds-grid.json``): with ``"all"`` the strict model scores 0.12 (mountain-1d) and
    0.10 (noise-1d) nats *above* D, and the fixed-inputs model does not beat it (-0.02 ± 0.01,
    -0.04 ± 0.04); with ``"context"`` strict scores 0.19 and 0.20 below D and fixed-inputs beats it
    by 0.22 ± 0.06 and 0.21 ± 0.03. Per training step ``"context"`` costs what ``"all"`` did (same
    grid); ``grid_span=2`` costs 1.6x (``--grid-speed-cpu``), which would break the project's 2x bar
    against ``neuralprocesses``.

    A task without real context points: its grid sits at the box centre and, unless fixed inputs are
    on, every target reads the grid's centre: one prediction for all targets, the only consistent
    strictly equivariant answer to an empty context.
    """

    def __init__(
        self,
        dim_x: int,
        dim_y: int,
        box: Box,
        *,
        channels: int = 32,
        depth: int = 5,
        kernel: int = 9,
        points_per_unit: float = 16,
        fixed: FixedInputs | None = None,
        body: nn.Module | Callable[[], nn.Module] | None = None,
        isotropic: bool = False,
        dilations: tuple[int, ...] | None = None,
        grid_centre: str | None = None,
        grid_span: float | None = None,
    ) -> None:
        super().__init__()
        self.dim_x, self.box = dim_x, tuple(box)
        self.spacing = 1.0 / points_per_unit
        self.register_buffer("box_centre", torch.tensor([(lo + hi) / 2 for lo, hi in box]), False)
        self.set_grid(grid_centre or GRID_CENTRE, grid_span)
        lengthscale = 1.6 / points_per_unit
        self.encoder = SetConvEncoder(dim_x, lengthscale, isotropic)
        self.embed = MLP(dim_y + 1, channels, hidden=channels, layers=1)
        self.fixed = fixed
        if isinstance(body, nn.Module):
            self.body = body
        elif body is not None:
            self.body = body()
        else:
            n_fixed = 0 if fixed is None else fixed.n_channels
            self.body = ConvBody(dim_x, channels + n_fixed, channels, depth, kernel, dilations=dilations)
        self.decoder = SetConvDecoder(dim_x, lengthscale, isotropic)
        self.head = MLP(channels, 2 * dim_y, hidden=channels, layers=1)
        self.likelihood = HeteroscedasticNormal()

    def set_grid(self, centre: str, span: float | None = None) -> None:
        """Place the internal grid: ``centre`` ``"context"`` or ``"all"``; ``span`` its width in box
        widths (``"context"`` only; default :data:`GRID_SPAN`). No parameter depends on it, so a
        trained model can be switched (what the lesson's comparison does)."""
        if centre not in ("context", "all"):
            raise ValueError(f"grid centre must be 'context' or 'all', got {centre!r}")
        span = 1.0 if centre == "all" else float(GRID_SPAN if span is None else span)
        width = max(hi - lo for lo, hi in self.box)
        # Room for the SetConv kernels at the edges.
        margin = max(0.05 * width, 2 * self.spacing)
        self.grid_centre, self.grid_span = centre, span
        self.n_grid = int(math.ceil((span * width + 2 * margin) / self.spacing)) | 1
        device = self.box_centre.device
        offsets = make_grid(torch.zeros(1, self.dim_x, device=device), self.n_grid, self.spacing)[0]
        self.register_buffer("offsets", offsets, False)

    def grid(self, centre: Tensor) -> Tensor:
        """Absolute grid positions ``[b, n.., d]`` around ``centre [b, d]``."""
        return centre.view(centre.shape[0], *([1] * self.dim_x), self.dim_x) + self.offsets

    def forward(
        self, xc: Tensor, yc: Tensor, xt: Tensor, mask_c: Tensor | None = None, *, fixed_inputs: bool = True
    ) -> Normal:
        """``xc [b, nc, dx]``, ``yc [b, nc, dy]``, ``xt [b, nt, dx]`` -> Normal ``[b, nt, dy]``."""
        mask_c = mask_or_ones(xc, mask_c)
        centre, keep, offsets, h = self._grid_features(xc, yc, mask_c, xt, fixed_inputs)
        z = self.decoder(offsets, h, self._relative(xt, centre, keep))
        return self.likelihood(self.head(z))

    @staticmethod
    def _relative(x: Tensor, centre: Tensor, keep: Tensor | None) -> Tensor:
        """Targets ``[b, n, d]`` in the grid's frame; tasks with ``keep`` False read the grid centre."""
        rel = x - centre[:, None]
        return rel if keep is None else rel * keep[:, None, None].to(rel.dtype)

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

        Equal to ``forward`` at the flattened grid points, but the decoder factorises per axis: what
        makes redrawing a 100 x 100 map after a click cheap.
        """
        if self.dim_x != 2:
            raise ValueError(f"predict_grid is for 2-D models; this one has dim_x = {self.dim_x}")
        mask_c = mask_or_ones(xc, mask_c)
        b = xc.shape[0]
        lo = torch.stack([t1.min(), t2.min()])
        hi = torch.stack([t1.max(), t2.max()])
        # With the "all" grid the bounding box of contexts and targets places it: the corners decide it.
        corners = torch.stack([lo, hi])[None].expand(b, 2, 2).to(xc.dtype)
        centre, keep, offsets, h = self._grid_features(xc, yc, mask_c, corners, fixed_inputs)
        r1 = self._relative(t1[None, :, None].to(xc.dtype), centre[:, :1], keep)[..., 0]
        r2 = self._relative(t2[None, :, None].to(xc.dtype), centre[:, 1:], keep)[..., 0]
        z = self.decoder.on_grid(offsets, h, r1, r2)
        return self.likelihood(self.head(z))

    def _grid_centre(
        self, xc: Tensor, mask_c: Tensor, xt: Tensor, fixed_inputs: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Grid centre ``[b, d]`` and which tasks decode their targets where they are (``[b]``;
        None: all). With the ``"context"`` grid a task without real context points has its grid at
        the box centre and, unless fixed inputs are on (position then matters), every target reads
        the grid centre: one prediction for every target, the only consistent strictly equivariant
        answer to an empty context."""
        if self.grid_centre == "all":
            return data_centre(xc, mask_c, xt), None
        centre, has = context_centre(xc, mask_c)
        centre = torch.where(has[:, None], centre, self.box_centre.to(centre.dtype))
        if self.fixed is not None and fixed_inputs:
            return centre, None
        return centre, has

    def _grid_features(
        self, xc: Tensor, yc: Tensor, mask_c: Tensor, xt: Tensor, fixed_inputs: bool
    ) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
        """Grid centre ``[b, d]``, which tasks decode in place (see :meth:`_grid_centre`), grid
        offsets ``[b, n.., d]`` and body output ``[b, n.., channels]``."""
        centre, keep = self._grid_centre(xc, mask_c, xt, fixed_inputs)
        # Work in the frame of the grid centre: the grid offsets are then the same constants for
        # every task, so a shifted task sees exactly the same relative positions.
        xc_rel = xc - centre[:, None]
        offsets = self.offsets.expand(xc.shape[0], *self.offsets.shape)
        h = self.embed(self.encoder(xc_rel, yc, mask_c, offsets))
        # Fixed inputs off (the strict component): no t; a strict body reads zeros in their channels.
        t = self.fixed(self.grid(centre)) if self.fixed is not None and fixed_inputs else None
        return centre, keep, offsets, self.body(h, t)
