"""The one unit of data every model consumes: a batch of context and target sets."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

#: A box in model coordinates, one ``(lo, hi)`` per input axis: where fixed inputs are non-zero.
Box = tuple[tuple[float, float], ...]


@dataclass
class Task:
    """A batch of tasks, inputs already normalised to the model's box.

    Shapes: ``xc [batch, nc, dx]``, ``yc [batch, nc, dy]``, ``xt [batch, nt, dx]``,
    ``yt [batch, nt, dy]`` (may be ``None`` when only predicting) and ``mask_c [batch, nc]``
    (bool, ``True`` marks a real context point; padding lets tasks of one batch have different
    context sizes, and ``nc = 0`` is an empty context set). ``info`` carries per-task extras a
    sampler wants to keep beside the data (e.g. which kernel drew the task), each ``[batch, ...]``.
    """

    xc: Tensor
    yc: Tensor
    xt: Tensor
    yt: Tensor | None = None
    mask_c: Tensor | None = None
    info: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mask_c is None:
            self.mask_c = torch.ones(self.xc.shape[:2], dtype=torch.bool, device=self.xc.device)
        self.validate()
        self._zero_padding()

    def _zero_padding(self) -> None:
        """Put zeros in the masked-out context entries, so whatever was there never reaches a model.

        Models multiply by the mask, and 0 * NaN is NaN: select (``torch.where``), do not multiply.
        """
        pad = ~self.mask_c[..., None]
        if bool(pad.any()):
            self.xc = torch.where(pad, torch.zeros((), dtype=self.xc.dtype, device=self.xc.device), self.xc)
            self.yc = torch.where(pad, torch.zeros((), dtype=self.yc.dtype, device=self.yc.device), self.yc)

    def validate(self) -> None:
        """Check shapes and values once, with errors that say what is wrong."""
        for name in ("xc", "yc", "xt"):
            value = getattr(self, name)
            if not isinstance(value, Tensor) or value.dim() != 3:
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"Task.{name} must be a tensor [batch, n, dim], got {shape}")
        b, nc, dx = self.xc.shape
        if self.yc.shape[:2] != (b, nc):
            raise ValueError(f"Task.yc {tuple(self.yc.shape)} does not match xc {tuple(self.xc.shape)}")
        if self.xt.shape[0] != b or self.xt.shape[2] != dx:
            raise ValueError(f"Task.xt {tuple(self.xt.shape)} does not match xc {tuple(self.xc.shape)}")
        if self.xt.shape[1] == 0:
            raise ValueError("Task has no target points (xt has nt = 0)")
        if self.yt is not None and self.yt.shape != (*self.xt.shape[:2], self.yc.shape[2]):
            raise ValueError(
                f"Task.yt {tuple(self.yt.shape)} must be [batch, nt, dy] = "
                f"{(*self.xt.shape[:2], self.yc.shape[2])}"
            )
        if self.mask_c.shape != (b, nc) or self.mask_c.dtype != torch.bool:
            raise ValueError(f"Task.mask_c must be a bool tensor [batch, nc] = {(b, nc)}")
        for name in ("xc", "yc", "xt", "yt"):
            value = getattr(self, name)
            if value is None:
                continue
            bad = ~torch.isfinite(value)
            where = ""
            if name in ("xc", "yc"):
                bad = bad & self.mask_c[..., None]
                where = " among its real context points (mask_c True; padding may hold anything)"
            if bad.any():
                raise ValueError(
                    f"Task.{name} has {int(bad.sum())} NaN or infinite values{where}; "
                    "drop missing observations, or mark them False in mask_c"
                )

    def for_model(self, model: torch.nn.Module) -> Task:
        """This task on the model's device and float dtype, after checking it has the model's dimensions.

        A float64 task given to a float32 model is cast (and vice versa); a task of another input or
        output dimension (e.g. 2-D test tasks for a 1-D model) is a clear error instead of a reshape
        failure deep inside the model.
        """
        for name, have in (("dim_x", self.dim_x), ("dim_y", self.dim_y)):
            want = getattr(model, name, None)
            if want is not None and want != have:
                raise ValueError(
                    f"the task has {name} = {have} but the model was built for {name} = {want}: "
                    "train and test tasks must come from data of the same dimensions"
                )
        param = next(model.parameters(), None)
        if param is None:
            return self
        return self.to(param.device, dtype=param.dtype)

    @property
    def batch_size(self) -> int:
        """Number of tasks in the batch."""
        return self.xc.shape[0]

    @property
    def dim_x(self) -> int:
        """Input dimension (1 for a line, 2 for a map)."""
        return self.xc.shape[2]

    @property
    def dim_y(self) -> int:
        """Output dimension."""
        return self.yc.shape[2]

    @property
    def n_context(self) -> Tensor:
        """Number of real context points per task, ``[batch]``."""
        return self.mask_c.sum(-1)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Task:
        """The same task on another device (and float dtype); itself when nothing would change."""
        if torch.device(device) == self.xc.device and (dtype is None or dtype == self.xc.dtype):
            return self

        def move(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            if dtype is not None and t.is_floating_point():
                return t.to(device=device, dtype=dtype)
            return t.to(device)

        return Task(
            move(self.xc),
            move(self.yc),
            move(self.xt),
            move(self.yt),
            move(self.mask_c),
            {k: move(v) for k, v in self.info.items()},
        )

    def select(self, index: Tensor | slice) -> Task:
        """A sub-batch of tasks."""
        return Task(
            self.xc[index],
            self.yc[index],
            self.xt[index],
            None if self.yt is None else self.yt[index],
            self.mask_c[index],
            {k: v[index] for k, v in self.info.items()},
        )
