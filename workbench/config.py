"""The one configuration object: a validated :class:`Experiment` (also CLI flags, notebook parameters)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

    from workbench.groups import Group

MODELS: dict[str, str] = {
    "conv": "ConvCNP: SetConv -> CNN -> SetConv (translations; symmetric kernels for T+flip; "
    "group CNN = EquivCNP for T+C4/D4/C8/D8)",
    "transformer": "TE-TNP for T (attention on position differences); plain TNP with positions for none",
    "deepsets": "CNP baseline: mean of point embeddings, no symmetry (group none)",
}

RELAXATIONS: dict[str, str] = {
    "strict": "exactly equivariant to the group",
    "fixed-inputs": "the paper's method: learnable functions of position, dropped out with p = 1 - strength",
    "relaxed-conv": "mixing of 3 filter banks per layer, by position (and by the output's rotation or "
    "reflection for T+C4/D4/C8/D8); strength = keep probability of the mixing (conv family only)",
    "residual-pathway": "equivariant + free CNN; the free part's weight decay is (1 - strength) / strength "
    "times the other's (conv family only)",
    "augmentation": "data augmentation (Brehmer et al. 2024): the free model (as group 'none') trained on "
    "tasks moved by random elements of the group; strength = probability a training task is moved (0: the "
    "free model, 1: every task; evaluation is never moved); conv or transformer, any group but 'none'",
    "symmetry-cloning": "the free model cloned from a strict teacher of the group (KL to its predictions), "
    "then fine-tuned on the data held to the clone by (1 - strength) / strength x ||theta - theta_clone||^2 "
    "(1: free fine-tuning, 0: held tightest); conv or transformer, any group but 'none'",
    "symmetrisation": "probabilistic symmetrisation (Kim et al. 2023): the free model averaged over group "
    "elements from a learned equivariant distribution; strength = weight of the identity, the free model "
    "as it is (0: equivariant in expectation, 1: the free model)",
}

#: Relaxations built for the conv family only (they change its CNN body).
CONV_ONLY = ("relaxed-conv", "residual-pathway")

#: Which groups each model family supports.
MODEL_GROUPS: dict[str, tuple[str, ...]] = {
    "conv": ("none", "T", "T+flip", "T+C4", "T+D4", "T+C8", "T+D8"),
    "transformer": ("none", "T"),
    "deepsets": ("none",),
}

DEVICES = ("auto", "cpu", "cuda")
#: Upper bounds of the sizes: beyond them a run does not fail, it just never finishes (or fills memory).
MAX_BATCH_SIZE = 4096
MAX_TEST_TASKS = 100_000
#: Learning-rate schedules over the steps of one training call (see ``workbench.train.train``).
SCHEDULES = ("cosine", "constant")
#: The default recipe, for ``Experiment`` and ``workbench.train.train`` alike: peak AdamW rate and
#: schedule. 2e-3 with the cosine decay learns 0.11 ± 0.01 nats/target more than the paper's 5e-4
#: constant in 2 CPU-minutes on gibbs-1d (3 seeds, paired per test task; ``bench/bench_recipe.py``).
DEFAULT_LR = 2e-3
DEFAULT_SCHEDULE = "cosine"


def _choices(name: str, value: Any, valid: Any) -> ValueError:
    return ValueError(f"Experiment.{name} = {value!r} is not valid; choose one of: {', '.join(valid)}")


def _is_bool(value: Any) -> bool:
    # bool is an int subclass (and numpy's bool_ converts to one): True would silently mean 1.
    return isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    # Plain Python numbers only: the experiment is written as JSON, which numpy scalars are not.
    return isinstance(value, (int, float)) and not _is_bool(value)


def _not_bool(value: Any) -> str:
    return " (a bool is not a number here)" if _is_bool(value) else ""


def check_box(box: Any, what: str = "box") -> tuple[tuple[float, float], ...]:
    """A box ``((lo, hi), ...)`` as floats with ``lo < hi`` on every axis, or a clear error why not."""
    try:
        out = tuple((float(lo), float(hi)) for lo, hi in box)
    except (TypeError, ValueError):
        raise ValueError(
            f"{what} = {box!r} must be ((lo, hi), ...) with one pair per input dimension"
        ) from None
    for axis, (lo, hi) in enumerate(out):
        if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
            raise ValueError(
                f"{what} = {box!r} is inverted or empty on axis {axis} ({lo} > {hi} or equal); "
                "give ((lo, hi), ...) with lo < hi, both finite"
            )
    return out


@dataclass
class Experiment:
    """What to train and how; every field is validated on construction.

    ``strength`` in [0, 1] is the relaxation strength: 0 = strictly equivariant, 1 = as free as the
    relaxation allows. For fixed inputs the per-task training dropout is ``p = 1 - strength``
    (0.5 = the paper's setting). With ``group="none"`` the model is free: the relaxation is unused and
    a conv model gets fixed inputs that are always on.

    ``dataset`` is a name of ``workbench.data.registry.DATASETS``, ``era5:PATH`` (an ERA5 NetCDF with
    ``t2m``), ``terrain:REGION`` (``alps``, ``rockies``, ``himalaya``, ``LON0,LON1,LAT0,LAT1`` or
    ``TRAIN->TEST``), a path to a ``.nc`` file or an ``xarray.DataArray`` with lat/lon (a gridded field
    of your own; see ``workbench.data.registry``). An in-memory field is not JSON: ``Run.save`` writes it
    next to the run.
    """

    dataset: str | xr.DataArray = "gibbs-1d"
    model: str = "conv"
    group: str = "T"
    relaxation: str = "fixed-inputs"
    strength: float = 0.5
    n_fixed: int = 8
    steps: int = 2000
    batch_size: int = 16
    #: Peak AdamW rate, reached after a short linear warm-up (``workbench.train.WARMUP_STEPS``).
    lr: float = DEFAULT_LR
    #: "cosine" decays the rate to zero over ``steps``; "constant" keeps it (after the warm-up).
    lr_schedule: str = DEFAULT_SCHEDULE
    seed: int = 0
    device: str = "auto"
    width: int | None = None
    depth: int | None = None
    test_tasks: int = 1024
    #: > 0: score the dataset's validation split every this many steps and keep the best weights
    #: (early stopping; real datasets with few independent tasks, e.g. Colorado, overfit). 0: off.
    validate_every: int = 0
    #: > 0: train on a fixed pool of this many tasks (a multiple of ``batch_size``), in epochs, each
    #: in a new random order: the finite training sets of a data-scaling study. 0: a fresh task every
    #: time (endless data).
    train_pool: int = 0

    def __post_init__(self) -> None:
        self.validate()

    @property
    def symmetry(self) -> Group:
        """The group object ``group`` names (the field stays a name, for JSON and the CLI)."""
        from workbench.groups import get_group

        return get_group(self.group)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field, the value and the valid choices."""
        from workbench.data.registry import check_dataset
        from workbench.groups import GROUPS, get_group

        dim = check_dataset(self.dataset)
        if self.model not in MODELS:
            raise _choices("model", self.model, MODELS)
        if self.group not in GROUPS:
            raise _choices("group", self.group, GROUPS)
        if self.relaxation not in RELAXATIONS:
            raise _choices("relaxation", self.relaxation, RELAXATIONS)
        self._check_numbers()
        if self.device not in DEVICES:
            raise _choices("device", self.device, DEVICES)
        if self.lr_schedule not in SCHEDULES:
            raise _choices("lr_schedule", self.lr_schedule, SCHEDULES)
        ok_groups = MODEL_GROUPS[self.model]
        if self.group not in ok_groups:
            raise ValueError(
                f"Experiment.group = {self.group!r} does not go with model {self.model!r}; "
                f"{self.model!r} supports groups: {', '.join(ok_groups)}"
            )
        if self.relaxation in CONV_ONLY and self.model != "conv":
            raise ValueError(
                f"Experiment.relaxation = {self.relaxation!r} needs model 'conv', not {self.model!r}; "
                "use 'fixed-inputs' or 'strict'"
            )
        group = get_group(self.group)
        if self.relaxation == "relaxed-conv" and group.is_trivial:
            raise ValueError(
                "Experiment.relaxation = 'relaxed-conv' relaxes a group; group 'none' has nothing to relax"
            )
        if self.relaxation in ("augmentation", "symmetry-cloning") and group.is_trivial:
            # The network is the free model either way: the group is what the data or the teacher bring.
            others = [g for g in ok_groups if g != "none"]
            fix = (
                f"choose a group of {self.model!r}: {', '.join(others)}"
                if others
                else f"model {self.model!r} has no other group; use model 'conv' or 'transformer'"
            )
            raise ValueError(
                f"Experiment.relaxation = {self.relaxation!r} trains the free model towards a group; "
                f"group 'none' has none to give ({fix})"
            )
        if self.relaxation == "symmetrisation" and group.is_trivial:
            raise ValueError(
                "Experiment.relaxation = 'symmetrisation' symmetrises the free model towards a group; "
                "group 'none' has nothing to relax (its free model is what symmetrisation wraps); "
                + (
                    f"choose a group of {self.model!r}: {', '.join(g for g in ok_groups if g != 'none')}"
                    if len(ok_groups) > 1
                    else f"model {self.model!r} has no other group; use model 'conv' or 'transformer'"
                )
            )
        try:
            group.check_dim(dim)
        except ValueError as err:
            name = self.dataset if isinstance(self.dataset, str) else "a gridded field"
            raise ValueError(f"Experiment.group = {self.group!r} with dataset {name!r}: {err}") from None

    def _check_numbers(self) -> None:
        """Types and bounds of the numeric fields; a bool is refused (True would mean 1)."""
        s = self.strength
        if not _is_number(s) or not 0.0 <= float(s) <= 1.0:
            raise ValueError(f"Experiment.strength = {s!r} must be a number in [0, 1]{_not_bool(s)}")
        for name, lo, hi in (
            ("n_fixed", 0, None),
            ("steps", 0, None),
            ("batch_size", 1, MAX_BATCH_SIZE),
            ("test_tasks", 1, MAX_TEST_TASKS),
            ("seed", 0, None),
            ("validate_every", 0, None),
            ("train_pool", 0, None),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or _is_bool(value) or value < lo:
                raise ValueError(
                    f"Experiment.{name} = {value!r} must be an integer >= {lo}{_not_bool(value)}"
                )
            if hi is not None and value > hi:
                raise ValueError(
                    f"Experiment.{name} = {value!r} is too large: at most {hi} (an integer in [{lo}, {hi}])"
                )
        if self.train_pool and self.train_pool % self.batch_size:
            raise ValueError(
                f"Experiment.train_pool = {self.train_pool} must be 0 (fresh tasks) or a multiple of "
                f"batch_size = {self.batch_size} (the pool is kept as whole batches), e.g. "
                f"{max(self.train_pool // self.batch_size, 1) * self.batch_size}"
            )
        for name in ("width", "depth"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or _is_bool(value) or value < 1):
                raise ValueError(
                    f"Experiment.{name} = {value!r} must be a positive integer or None{_not_bool(value)}"
                )
        if not _is_number(self.lr) or not 0 < float(self.lr) < math.inf:
            raise ValueError(
                f"Experiment.lr = {self.lr!r} must be a finite positive number{_not_bool(self.lr)}"
            )

    def replace(self, **changes: Any) -> Experiment:
        """A validated copy with some fields changed."""
        return Experiment(**{**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Experiment:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(
                f"unknown Experiment fields {sorted(unknown)}; valid fields: {', '.join(sorted(names))}"
            )
        return cls(**d)
