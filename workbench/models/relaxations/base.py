"""The relaxation interface and what the factory hands it (:class:`Parts`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from workbench.groups import Group
from workbench.models.bodies import BODIES, BodySpec
from workbench.nn.fixed_inputs import FixedInputs
from workbench.task import Box, Task


@dataclass(frozen=True)
class Parts:
    """The model being built: family, group, data dimension, box, sizes and the relaxation's knobs."""

    family: str
    group: Group
    dim_x: int
    box: Box
    width: int
    depth: int
    kernel: int
    dilations: tuple[int, ...] | None
    #: Relaxation strength in [0, 1] (0 = strict) and the number of fixed-input channels B.
    strength: float
    n_fixed: int

    @property
    def dropout(self) -> float:
        """Per-task dropout of the fixed inputs, p = 1 - strength."""
        return 1.0 - float(self.strength)

    def body_spec(self, c_in: int) -> BodySpec:
        """The body's shape with ``c_in`` input channels."""
        return BodySpec(self.group, self.dim_x, c_in, self.width, self.depth, self.kernel, self.dilations)

    def strict_body(self, n_fixed: int = 0) -> nn.Module:
        """The group's strict body, with ``n_fixed`` fixed-input channels appended to its input."""
        return BODIES[self.group.enforced_by].build(self.body_spec(self.width + n_fixed))


class Relaxation:
    """Strict by default: no fixed inputs, the group's own body, no penalty."""

    name: str = ""

    def fixed_inputs(self, parts: Parts) -> FixedInputs | None:
        """The learned functions of position the model gets (None: none)."""
        return None

    def body(self, parts: Parts, fixed: FixedInputs | None) -> nn.Module:
        """The conv family's body; by default the group's strict body with the fixed inputs as channels."""
        return parts.strict_body(0 if fixed is None else fixed.n_channels)

    def penalty(self, model: nn.Module) -> Tensor:
        """A term for the training loss (weight decays of a residual pathway; 0 here)."""
        return torch.zeros((), device=next(model.parameters()).device)

    #: Whether ``build_model`` has the family build the trivial group's free model for this
    #: relaxation (which then restores the symmetry in :meth:`wrap`, e.g. probabilistic symmetrisation).
    free_base: bool = False
    #: Whether the model stays free of the group at every strength (no strict component to charge the
    #: symmetry headroom to: augmentation, symmetry cloning).
    never_strict: bool = False

    def wrap(self, model: nn.Module, parts: Parts) -> nn.Module:
        """The model ``build_model`` returns, given the one the family built (by default that one)."""
        return model

    def augment(self, model: nn.Module, task: Task, generator: torch.Generator | None = None) -> Task:
        """A training batch as the model trains on it (augmentation moves it by the group); unchanged here.

        ``workbench.train.train`` calls it on every training batch (after ``Task.for_model``), never in
        evaluation; ``generator`` None draws from torch's global generator, which checkpoints keep.
        """
        return task

    def prepare(
        self,
        model: nn.Module,
        tasks: Iterator[Task],
        *,
        steps: int,
        lr: float,
        device: torch.device,
        progress: bool,
        fit: Callable[..., object],
        build: Callable[[nn.Module, str], nn.Module],
    ) -> None:
        """Work before the training on data (symmetry cloning: teacher and clone); nothing here.

        ``train`` calls it once per call, before its first step, with ``steps`` = the steps asked for and
        the training stream: the tasks it draws are trained on again afterwards, in order. What the
        training then needs (the clone's weights) goes in ``model.relaxation_state``, a dict of tensors
        that checkpoints keep; a model that has it is prepared already (a resumed or continued run).
        ``fit(other, tasks, steps, desc=...)`` trains another model as ``train`` does (this run's rate,
        device and progress); ``build(model, relaxation)`` is the model's experiment built with another
        relaxation, untrained (given here because the models package cannot import the factory or
        ``train`` without an import cycle).
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
