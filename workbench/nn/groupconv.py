"""Rotation / reflection group convolutions (C_n, D_n) on square 2-D grids, in plain PyTorch.

Conventions used throughout (tests pin them down):

* Fields live on a square, centred grid ``[batch, channels, H, W]``; centred coordinates of pixel
  ``(i, j)`` are ``(u, v) = (i - c, j - c)`` with ``c = (H - 1) / 2`` (u = row, v = column).
* A rotation by ``theta`` acts on a scalar field as ``(R f)(u, v) = f(A (u, v))`` with
  ``A = [[cos, sin], [-sin, cos]]``; at 90 degrees this is exactly ``torch.rot90(f, 1, dims=(-2, -1))``.
  The reflection ``F`` is ``torch.flip(f, dims=(-1,))`` (mirror the columns).
* Group element ``(r, s)`` with ``r`` in ``0..n-1``, ``s`` in ``{0, 1}`` is the operator ``R^r F^s``
  (flip first, then rotate by ``2 pi r / n``). Along every group axis element ``(r, s)`` sits at index
  ``s * n + r``: the n rotations first, then the n reflected rotations (D_n only).
* Regular-representation fields ``[batch, channels, group, H, W]`` transform as
  ``(L_h f)[g] = R_h f[h^-1 g]``: rotate every spatial map and permute the group axis.
  The lifting convolution satisfies ``lift(R_h x) = L_h lift(x)``, group convolutions commute with ``L_h``,
  and pooling over the group axis turns ``L_h`` back into ``R_h``, so ``GroupCNN(R x) = R GroupCNN(x)``.

Rotations by multiples of 90 degrees are exact index permutations (``rot90`` / ``flip``). For other angles
(C8, D8, ...) the filter parameters live on the disc of radius ``(k - 1) / 2`` inside the ``k x k`` window
(``filter_support``), and a fixed linear map "disc pixels -> all |G| rotated ``k x k`` copies" is built once
per ``(kernel_size, group, interpolation)``, cached, and applied with one matmul per forward:

* ``interpolation="gaussian"`` (default): the parameters are weights of Gaussian bumps (width
  ``GAUSSIAN_WIDTH`` px) on the disc pixels, tapered smoothly to zero at radius ``(k - 1) / 2 + 1/2``;
  each copy samples the rotated continuous filter. Measured 2-3x smaller 45-degree equivariance error
  than bilinear (about 1% vs 2% at depth 4, kernel 5, on smooth fields), at the price of blurrier filters.
* ``interpolation="bilinear"``: the identity copy is the raw disc filter; rotated copies are bilinear splats
  (the adjoint of bilinear sampling, which keeps each filter's sum and first moments exact).

Quarter turns are always applied as exact permutations on top of a residual angle in [0, 90) degrees, so
C8/D8 networks are exactly (to float rounding) equivariant to rot90 and flips.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "GroupCNN",
    "GroupConv2d",
    "GroupPool",
    "GroupSpec",
    "LiftingConv2d",
    "act_on_field",
    "act_on_regular",
    "filter_support",
    "matched_channels",
    "plain_cnn",
    "rotate_filters",
]

#: A point-group element ``(r, s)``: rotation index and reflection bit (not :class:`workbench.groups.Element`,
#: which is an affine map of points).
RotFlip = tuple[int, int]

_NAME_RE = re.compile(r"^([CD])(\d+)$")


class HasPointGroup(Protocol):
    """What a group object tells the layers: ``point_group = (n, reflections)``."""

    @property
    def point_group(self) -> tuple[int, bool]: ...


@dataclass(frozen=True)
class GroupSpec:
    """The cyclic group C_n (``reflections=False``) or dihedral group D_n acting on the plane."""

    n: int
    reflections: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"GroupSpec.n must be an integer >= 1, got {self.n!r}")

    @classmethod
    def of(cls, group: HasPointGroup) -> GroupSpec:
        """The point group of a symmetry group object (``workbench.groups.Group``): its C_n or D_n."""
        n, reflections = group.point_group
        return cls(n, reflections)

    @classmethod
    def from_name(cls, name: str) -> GroupSpec:
        """Parse ``"C8"``, ``"D4"``, ... (case-insensitive) into a GroupSpec."""
        match = _NAME_RE.match(name.strip().upper()) if isinstance(name, str) else None
        if match is None or int(match.group(2)) < 1:
            raise ValueError(
                f"unknown group name {name!r}: expected 'C<n>' or 'D<n>' with integer n >= 1 "
                "(e.g. 'C4', 'C8', 'D4', 'D8')"
            )
        return cls(int(match.group(2)), match.group(1) == "D")

    @property
    def order(self) -> int:
        """Number of group elements |G| (n or 2n)."""
        return 2 * self.n if self.reflections else self.n

    @property
    def name(self) -> str:
        """Short name such as ``"C8"`` or ``"D4"``."""
        return f"{'D' if self.reflections else 'C'}{self.n}"

    @property
    def exact_on_grid(self) -> bool:
        """Whether every element maps the pixel grid to itself (all rotations are multiples of 90 degrees)."""
        return 4 % self.n == 0

    def elements(self) -> list[RotFlip]:
        """All elements ``(r, s)`` in group-axis order (index ``s * n + r``)."""
        return [(r, s) for s in range(2 if self.reflections else 1) for r in range(self.n)]

    def index(self, g: RotFlip) -> int:
        """Position of element ``g = (r, s)`` along the group axis."""
        r, s = g
        if s and not self.reflections:
            raise ValueError(f"{self.name} has no reflections, got element {g}")
        return s * self.n + r % self.n

    def element(self, i: int) -> RotFlip:
        """The element at position ``i`` of the group axis."""
        if not 0 <= i < self.order:
            raise IndexError(f"element index {i} out of range for {self.name} (order {self.order})")
        return (i % self.n, i // self.n)

    def compose(self, a: RotFlip, b: RotFlip) -> RotFlip:
        """Product ``a b`` (apply b first), using ``F R F = R^-1``."""
        (r1, s1), (r2, s2) = a, b
        return ((r1 + (-r2 if s1 else r2)) % self.n, s1 ^ s2)

    def inverse(self, g: RotFlip) -> RotFlip:
        """Inverse element: rotations invert, reflections are involutions."""
        r, s = g
        return (r % self.n, 1) if s else (-r % self.n, 0)

    def angle(self, g: RotFlip) -> float:
        """Rotation angle of ``g`` in radians (the reflection part is applied before it)."""
        return 2 * math.pi * (g[0] % self.n) / self.n

    def cayley_table(self) -> Tensor:
        """``[order, order]`` long tensor: ``table[i, j] = index(element(i) element(j))``."""
        els = self.elements()
        return torch.tensor([[self.index(self.compose(a, b)) for b in els] for a in els], dtype=torch.long)

    def inverse_indices(self) -> Tensor:
        """``[order]`` long tensor: ``inv[i] = index(element(i)^-1)``."""
        return torch.tensor([self.index(self.inverse(g)) for g in self.elements()], dtype=torch.long)


def _as_group(group: GroupSpec | str) -> GroupSpec:
    return GroupSpec.from_name(group) if isinstance(group, str) else group


# ---------------------------------------------------------------------------------------------------------
# Filter transforms (cached per kernel size and group)
# ---------------------------------------------------------------------------------------------------------


def _check_kernel_size(kernel_size: int) -> None:
    if kernel_size < 1 or kernel_size % 2 == 0:
        # Even kernels have no centre pixel, so rotation about the centre would shift the output grid.
        raise ValueError(f"kernel_size must be an odd integer >= 1, got {kernel_size!r}")


@cache
def _support(kernel_size: int, disc: bool) -> Tensor:
    """Bool ``[k, k]``: the full square, or the disc of radius (k - 1) / 2 (rotations keep it inside)."""
    if not disc:
        return torch.ones(kernel_size, kernel_size, dtype=torch.bool)
    c = (kernel_size - 1) / 2
    coords = torch.arange(kernel_size, dtype=torch.float64) - c
    r2 = coords[:, None] ** 2 + coords[None, :] ** 2
    return r2 <= c * c + 1e-9


def filter_support(kernel_size: int, group: GroupSpec | str) -> Tensor:
    """Bool ``[k, k]`` mask of the pixels a filter of ``group`` may use (disc unless the group is exact)."""
    _check_kernel_size(kernel_size)
    group = _as_group(group)
    return _support(kernel_size, not group.exact_on_grid).clone()


def _exact_permutation(kernel_size: int, g: RotFlip) -> Tensor:
    """``[k*k]`` long: ``(R^r F^s K).flatten() = K.flatten()[perm]`` (r counts quarter turns)."""
    grid = torch.arange(kernel_size * kernel_size).view(kernel_size, kernel_size)
    if g[1]:
        grid = torch.flip(grid, dims=(-1,))
    return torch.rot90(grid, g[0], dims=(-2, -1)).flatten()


INTERPOLATIONS = ("gaussian", "bilinear")
# Width (pixels) of the Gaussian bumps that turn disc-pixel parameters into a continuous filter. Wider is more
# equivariant but blurrier: the filter's response is damped by exp(-(0.8 * omega)^2 / 2), 0.04 at Nyquist.
GAUSSIAN_WIDTH = 0.8


def _bilinear_splat(kernel_size: int, theta: float, mask: Tensor) -> Tensor:
    """``[k*k, k*k]`` float64 map moving each disc pixel to its rotated position by bilinear splatting.

    Splatting (the adjoint of bilinear sampling) spreads each pixel over the 4 grid points around its rotated
    position, so a filter's sum and first moments rotate exactly; plain bilinear sampling does not (the
    centre pixel gains 34% mass at 45 degrees) and measured ~3x larger equivariance errors.
    """
    k = kernel_size
    c = (k - 1) / 2
    out = torch.zeros(k * k, k * k, dtype=torch.float64)
    cos, sin = math.cos(theta), math.sin(theta)
    for i, j in mask.nonzero().tolist():
        u, v = i - c, j - c
        # Mass at (u, v) lands at A(theta)^-1 (u, v); rounding kills 1e-16 noise at exact points.
        du, dv = round(cos * u - sin * v + c, 12), round(sin * u + cos * v + c, 12)
        i0, j0 = math.floor(du), math.floor(dv)
        fu, fv = du - i0, dv - j0
        for ii, wi in ((i0, 1 - fu), (i0 + 1, fu)):
            for jj, wj in ((j0, 1 - fv), (j0 + 1, fv)):
                # Rotated disc points stay within radius c, so their neighbours stay inside the k x k box.
                if wi * wj != 0 and 0 <= ii < k and 0 <= jj < k:
                    out[ii * k + jj, i * k + j] += wi * wj
    return out


def _gaussian_rotation(kernel_size: int, theta: float, mask: Tensor) -> Tensor:
    """``[k*k, k*k]`` float64 map: sample the rotated continuous filter ``win(|x|) sum_j w_j N(x; p_j, s^2)``.

    Every copy (the identity included) is a sample of the same smooth, radially tapered function, so all
    copies are equally blurred and the lattice sums of sampled Gaussians are rotation-invariant to ~1e-4.
    """
    k = kernel_size
    c = (k - 1) / 2
    coords = torch.arange(k, dtype=torch.float64) - c
    u, v = (t.flatten() for t in torch.meshgrid(coords, coords, indexing="ij"))
    su, sv = math.cos(theta) * u + math.sin(theta) * v, -math.sin(theta) * u + math.cos(theta) * v
    d2 = (su[:, None] - u[None, :]) ** 2 + (sv[:, None] - v[None, :]) ** 2
    s2 = GAUSSIAN_WIDTH**2
    bumps = torch.exp(-d2 / (2 * s2)) / (2 * math.pi * s2) * mask.flatten()[None, :]
    # A smooth cos^2 taper from radius c - 1/2 to c + 1/2 instead of a hard disc edge: a hard edge cuts the
    # rotated copies differently on the lattice and roughly doubled the error at depth.
    t = ((torch.sqrt(u**2 + v**2) - (c - 0.5)) / 1.0).clamp(0, 1)
    return torch.cos(t * math.pi / 2)[:, None] ** 2 * bumps


def _check_interpolation(interpolation: str) -> None:
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")


@cache
def _transform(
    kernel_size: int, group: GroupSpec, interpolation: str = "gaussian"
) -> tuple[str, Tensor, Tensor]:
    """Cached filter transform: ``("index", [order, k*k] long)`` or ``("matrix", [order*k*k, S] float64)``.

    Both act on the S support pixels of a filter (row-major order within ``filter_support``) and give the
    ``order`` transformed ``k x k`` filters; the third item is the ``[S]`` long index of the support pixels.
    """
    _check_kernel_size(kernel_size)
    _check_interpolation(interpolation)
    kk = kernel_size * kernel_size
    mask = _support(kernel_size, not group.exact_on_grid)
    support = mask.flatten().nonzero().squeeze(1)
    if group.exact_on_grid:
        index = torch.stack([_exact_permutation(kernel_size, g) for g in group.elements()])
        return "index", index, support
    eye = torch.eye(kk, dtype=torch.float64)
    flip = eye[_exact_permutation(kernel_size, (0, 1))]
    mats = []
    for r, s in group.elements():
        # Split the angle into whole quarter turns (exact permutation) and a residual in [0, 90) degrees so
        # that the filter bank is exactly covariant under rot90 whenever n is a multiple of 4.
        quarter = (4 * r) // group.n
        residual = 2 * math.pi * r / group.n - quarter * math.pi / 2
        if interpolation == "gaussian":
            mat = _gaussian_rotation(kernel_size, residual, mask)
        elif residual > 1e-12:
            mat = _bilinear_splat(kernel_size, residual, mask)
        else:
            mat = torch.diag(mask.flatten().double())
        mat = eye[_exact_permutation(kernel_size, (quarter % 4, 0))] @ mat
        mats.append(mat @ flip if s else mat)
    matrix = torch.cat(mats, dim=0)[:, support]
    return "matrix", matrix, support


def _rotated_bank(weight: Tensor, kind: str, table: Tensor) -> Tensor:
    """Support-pixel filters ``[..., S]`` -> all transformed copies ``[..., order * k * k]``."""
    if kind == "index":
        return weight[..., table.flatten()]
    return weight @ table.to(weight.dtype).T


def rotate_filters(w: Tensor, group: GroupSpec | str, interpolation: str = "gaussian") -> Tensor:
    """Stack of transformed filters: ``[..., k, k] -> [..., order, k, k]`` (entry g is ``R_g w``).

    Exact (rot90 / flip) for C1, C2, C4, D1, D2, D4. Otherwise only the disc pixels of ``w``
    (``filter_support``) are used and every copy is resampled (see ``interpolation`` in the module docstring),
    so even the identity copy of a ``"gaussian"`` bank is a smoothed ``w``.
    """
    group = _as_group(group)
    k = w.shape[-1]
    if w.shape[-2] != k:
        raise ValueError(f"filters must be square [..., k, k], got {tuple(w.shape)}")
    kind, table, support = _transform(k, group, interpolation)
    flat = w.reshape(*w.shape[:-2], k * k)[..., support.to(w.device)]
    bank = _rotated_bank(flat, kind, table.to(w.device))
    return bank.reshape(*w.shape[:-2], group.order, k, k)


# ---------------------------------------------------------------------------------------------------------
# Group actions on fields (used by tests and by equivariance diagnostics)
# ---------------------------------------------------------------------------------------------------------


def act_on_field(x: Tensor, group: GroupSpec | str, g: RotFlip, mode: str = "bilinear") -> Tensor:
    """Apply element ``g`` to scalar fields ``[..., H, W]`` (exact for 90-degree multiples, else resampled).

    Non-grid angles resample with ``grid_sample`` (``mode`` bilinear/bicubic/nearest, zeros outside the grid),
    so the result is only meaningful on the central disc.
    """
    group = _as_group(group)
    r, s = g
    if s:
        x = torch.flip(x, dims=(-1,))
    if (4 * r) % group.n == 0:
        return torch.rot90(x, (4 * r) // group.n, dims=(-2, -1))
    h, w = x.shape[-2:]
    if h != w:
        raise ValueError(f"rotations need a square grid, got {h} x {w}")
    theta = group.angle(g)
    c = (h - 1) / 2
    coords = torch.arange(h, dtype=torch.float64, device=x.device) - c
    u, v = coords[:, None].expand(h, h), coords[None, :].expand(h, h)
    su, sv = math.cos(theta) * u + math.sin(theta) * v, -math.sin(theta) * u + math.cos(theta) * v
    # grid_sample wants (x = column, y = row) in [-1, 1] with align_corners=True at the pixel centres.
    grid = torch.stack([sv / c, su / c], dim=-1).to(x.dtype)
    lead = x.shape[:-2]
    flat = x.reshape(-1, 1, h, w)
    out = F.grid_sample(flat, grid.expand(flat.shape[0], h, w, 2), mode=mode, align_corners=True)
    return out.reshape(*lead, h, w)


def act_on_regular(y: Tensor, group: GroupSpec | str, g: RotFlip, mode: str = "bilinear") -> Tensor:
    """Regular-representation action ``(L_g y)[h] = R_g y[g^-1 h]`` on ``[batch, channels, group, H, W]``."""
    group = _as_group(group)
    if y.shape[-3] != group.order:
        raise ValueError(f"group axis has size {y.shape[-3]}, expected {group.order} for {group.name}")
    perm = group.cayley_table()[group.index(group.inverse(g))].to(y.device)
    return act_on_field(y[..., perm, :, :], group, g, mode=mode)


# ---------------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------------


class _GroupConvBase(nn.Module):
    """Shared buffers and helpers of the lifting and group convolutions."""

    def _setup(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        group: GroupSpec | str,
        interpolation: str,
    ) -> None:
        _check_kernel_size(kernel_size)
        _check_interpolation(interpolation)
        self.group = _as_group(group)
        self.interpolation = interpolation
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        kind, table, support = _transform(kernel_size, self.group, interpolation)
        self._kind = kind
        # Kaiming fan-in per input field: S for exact groups. Smoothed copies have squared norm E << S (white
        # inputs see E, smooth inputs see the filter sum, i.e. S); fan-in S shrank activations ~2x per
        # layer, fan-in E grew them ~2x, so use the geometric mean sqrt(S * E): depth-5 nets stay near 1.
        energy = float(support.numel() if kind == "index" else table.pow(2).sum() / self.group.order)
        self._filter_energy = math.sqrt(support.numel() * energy)
        # Buffers (not persistent): derived from (kernel_size, group), so they need not be saved. The matrix
        # stays float64 (cast per forward, it is tiny) so that .double() models get exact filters.
        table = table.clone()
        self.register_buffer("_table", table, persistent=False)
        self.register_buffer("_support_index", support.clone(), persistent=False)
        self.n_support = int(support.numel())

    def _bias(self) -> Tensor | None:
        # Bias is shared over the group axis (a per-element bias would break equivariance).
        return None if self.bias is None else self.bias.repeat_interleave(self.group.order)

    def extra_repr(self) -> str:
        """Layer summary for ``print(module)``."""
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"group={self.group.name}, support={self.n_support}/{self.kernel_size**2}, "
            f"interpolation={self.interpolation!r}, bias={self.bias is not None}"
        )


class LiftingConv2d(_GroupConvBase):
    """Lifting conv ``[batch, c_in, H, W] -> [batch, c_out, group, H, W]``, ``out[:, :, g] = x * R_g w``.

    Parameters: ``weight [c_out, c_in, S]`` on the S support pixels (``filter_support``), ``bias [c_out]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        group: GroupSpec | str,
        bias: bool = True,
        gain: float = math.sqrt(2.0),
        interpolation: str = "gaussian",
    ) -> None:
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, group, interpolation)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, self.n_support))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        # Kaiming fan-in: each output map sees c_in filters.
        nn.init.normal_(self.weight, std=gain / math.sqrt(in_channels * self._filter_energy))

    def full_weight(self) -> Tensor:
        """The conv2d weight ``[c_out * group, c_in, k, k]`` (output channel index ``o * order + g``)."""
        o, i, k, order = self.out_channels, self.in_channels, self.kernel_size, self.group.order
        bank = _rotated_bank(self.weight, self._kind, self._table)  # [o, i, order * k * k]
        return bank.view(o, i, order, k, k).transpose(1, 2).reshape(o * order, i, k, k)

    def forward(self, x: Tensor) -> Tensor:
        """``[batch, c_in, H, W] -> [batch, c_out, group, H, W]``."""
        out = F.conv2d(x, self.full_weight(), self._bias(), padding=self.kernel_size // 2)
        return out.view(x.shape[0], self.out_channels, self.group.order, *out.shape[-2:])


class GroupConv2d(_GroupConvBase):
    """Group convolution: ``[batch, c_in, group, H, W] -> [batch, c_out, group, H, W]``.

    ``out[g] = sum_h in[h] * R_g w[g^-1 h]``: rotate the filter and permute the input group axis.
    Parameters: ``weight [c_out, c_in, group, S]`` on the S support pixels, ``bias [c_out]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        group: GroupSpec | str,
        bias: bool = True,
        gain: float = math.sqrt(2.0),
        interpolation: str = "gaussian",
    ) -> None:
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, group, interpolation)
        order, kk = self.group.order, kernel_size * kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, order, self.n_support))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.normal_(self.weight, std=gain / math.sqrt(in_channels * order * self._filter_energy))
        # gather[g, i, h, p] indexes the flattened bank [c_in, order(h'), order(g), k*k] so that one gather
        # yields the conv weight in its final [c_out, g, c_in, h, p] layout: h' = g^-1 h, rotated by g.
        rel = self.group.cayley_table()[self.group.inverse_indices()]  # rel[g, h] = index(g^-1 h)
        g_idx = torch.arange(order)
        per_in = (rel * order + g_idx[:, None])[:, :, None] * kk + torch.arange(kk)  # [g, h, p]
        gather = torch.arange(in_channels)[None, :, None, None] * (order * order * kk) + per_in[:, None]
        self.register_buffer("_gather", gather.flatten(), persistent=False)

    def full_weight(self) -> Tensor:
        """Conv2d weight ``[c_out * group, c_in * group, k, k]``: rows ``o*order+g``, cols ``i*order+h``."""
        o, i, k, order = self.out_channels, self.in_channels, self.kernel_size, self.group.order
        bank = _rotated_bank(self.weight, self._kind, self._table)  # [o, i, order(h'), order(g) * k * k]
        full = bank.reshape(o, -1)[:, self._gather]
        return full.view(o * order, i * order, k, k)

    def forward(self, x: Tensor) -> Tensor:
        """``[batch, c_in, group, H, W] -> [batch, c_out, group, H, W]``."""
        b, c, order, h, w = x.shape
        if c != self.in_channels or order != self.group.order:
            raise ValueError(
                f"expected [batch, {self.in_channels}, {self.group.order}, H, W], got {tuple(x.shape)}"
            )
        out = F.conv2d(
            x.reshape(b, c * order, h, w), self.full_weight(), self._bias(), padding=self.kernel_size // 2
        )
        return out.view(b, self.out_channels, order, *out.shape[-2:])


class GroupPool(nn.Module):
    """Pool over the group axis: ``[batch, c, group, H, W] -> [batch, c, H, W]`` (mean or max)."""

    def __init__(self, mode: str = "mean") -> None:
        super().__init__()
        if mode not in ("mean", "max"):
            raise ValueError(f"GroupPool mode must be 'mean' or 'max', got {mode!r}")
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        """``[batch, c, group, H, W] -> [batch, c, H, W]``."""
        return x.mean(dim=2) if self.mode == "mean" else x.amax(dim=2)

    def extra_repr(self) -> str:
        """Layer summary for ``print(module)``."""
        return f"mode={self.mode!r}"


class GroupCNN(nn.Module):
    """G-equivariant CNN on scalar fields: ``[batch, c_in, H, W] -> [batch, c_out, H, W]``.

    lift -> ReLU -> (depth - 2) x [group conv -> ReLU] -> group conv -> pool over the group.
    ``channels`` counts fields PER GROUP ELEMENT: the hidden tensors are ``[batch, channels, group, H, W]``,
    i.e. ``channels * order`` feature maps. Channel budgets versus a plain CNN with C channels
    (see ``matched_channels``): ``channels = C / order`` gives the same feature maps and conv FLOPs with
    ~order x fewer parameters; ``channels = C / sqrt(order)`` gives ~the same parameter count with
    ~sqrt(order) x more feature maps and ~order x more FLOPs.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        out_channels: int,
        kernel_size: int,
        depth: int,
        group: GroupSpec | str,
        pool: str = "mean",
        interpolation: str = "gaussian",
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"GroupCNN depth must be >= 2 (lift + final group conv), got {depth}")
        self.group = _as_group(group)
        self.in_channels, self.channels, self.out_channels = in_channels, channels, out_channels
        self.kernel_size, self.depth = kernel_size, depth
        kw = {"interpolation": interpolation}
        self.lift = LiftingConv2d(in_channels, channels, kernel_size, self.group, **kw)
        self.convs = nn.ModuleList(
            GroupConv2d(channels, channels, kernel_size, self.group, **kw) for _ in range(depth - 2)
        )
        # No ReLU follows the last layer, so it uses unit gain to keep the output at input scale.
        self.head = GroupConv2d(channels, out_channels, kernel_size, self.group, gain=1.0, **kw)
        self.pool = GroupPool(pool)

    @property
    def n_parameters(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @property
    def n_feature_maps(self) -> int:
        """Real feature maps per hidden layer (``channels * order``), comparable to a plain CNN's channels."""
        return self.channels * self.group.order

    def forward(self, x: Tensor) -> Tensor:
        """``[batch, c_in, H, W] -> [batch, c_out, H, W]``."""
        h = F.relu(self.lift(x))
        for conv in self.convs:
            h = F.relu(conv(h))
        return self.pool(self.head(h))


def plain_cnn(
    in_channels: int, channels: int, out_channels: int, kernel_size: int, depth: int
) -> nn.Sequential:
    """Non-equivariant reference CNN laid out like GroupCNN: ``[b, c_in, H, W] -> [b, c_out, H, W]``."""
    pad = kernel_size // 2
    widths = [in_channels] + [channels] * (depth - 1) + [out_channels]
    layers: list[nn.Module] = []
    for li in range(depth):
        layers.append(nn.Conv2d(widths[li], widths[li + 1], kernel_size, padding=pad))
        if li < depth - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def matched_channels(plain_channels: int, group: GroupSpec | str, match: str = "feature_maps") -> int:
    """Per-element GroupCNN ``channels`` matching a plain CNN's width (``feature_maps`` or ``params``)."""
    order = _as_group(group).order
    if match == "feature_maps":
        return max(1, round(plain_channels / order))
    if match == "params":
        return max(1, round(plain_channels / math.sqrt(order)))
    raise ValueError(f"match must be 'feature_maps' or 'params', got {match!r}")
