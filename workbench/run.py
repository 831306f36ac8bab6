"""A run = experiment + trained model + history + metrics; ``run`` makes one, ``load_run`` reads one back."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from workbench.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from workbench.config import Experiment
from workbench.data.registry import make_dataset
from workbench.evaluate import delta_equiv, mean_loglik, oracle_loglik, orbit_error
from workbench.groups import get_group
from workbench.models import build_model
from workbench.models.base import NeuralProcess
from workbench.nn.fixed_inputs import Box
from workbench.task import Task
from workbench.train import Callback, History, KeepBest, resolve_device, train

#: Metric name -> (unit, meaning); the order is the order of the printed table.
METRICS: dict[str, tuple[str, str]] = {
    "loglik": ("nats/target", "test log-likelihood per target, fixed inputs on"),
    "loglik_strict": ("nats/target", "test log-likelihood of the strict component (fixed inputs off)"),
    "oracle_loglik": ("nats/target", "exact GP oracle (the ceiling)"),
    "oracle_gap": ("nats/target", "oracle_loglik - loglik"),
    "gaussian_loglik": ("nats/target", "best Gaussian predictor: the oracle moment-matched (ceiling B)"),
    "equivariant_loglik": (
        "nats/target",
        "best strictly translation-equivariant Gaussian predictor (ceiling D)",
    ),
    "gaussian_limit": ("nats/target", "oracle_loglik - gaussian_loglik: what a Gaussian output costs"),
    "symmetry_headroom": (
        "nats/target",
        "gaussian_loglik - equivariant_loglik, charged to strict models only (0 otherwise)",
    ),
    "learning_shortfall": ("nats/target", "oracle_gap - gaussian_limit - symmetry_headroom"),
    "delta_equiv": ("y units", "mean |mu(fixed on) - mu(fixed off)|"),
    "orbit_error": ("y units", "mean |mu(g.x; g.D) - mu(x; D)| over sampled g (translations for group none)"),
    "train_seconds": ("s", "wall time of training"),
    "steps_per_second": ("1/s", "training speed"),
    "n_parameters": ("", "number of trainable parameters"),
    "best_step": ("", "step whose weights were kept (early stopping, validate_every > 0)"),
    "val_loglik": ("nats/target", "validation log-likelihood at best_step"),
}


#: ``on_evaluate(what, done, total)``: the part of the evaluation about to run, and how far it got.
EvalProgress = Callable[[str, int, int], None]


@dataclass
class Run:
    """A trained model with what produced it and how well it does."""

    experiment: Experiment
    model: NeuralProcess
    history: History
    metrics: dict[str, float] = field(default_factory=dict)
    box: Box = ()
    dim_x: int = 1
    dim_y: int = 1

    def predict(self, task: Task, *, fixed_inputs: bool = True) -> torch.distributions.Normal:
        """Predictive distribution for a task (on the model's device, in evaluation mode)."""
        self.model.eval()
        dev = next(self.model.parameters()).device
        with torch.no_grad():
            return self.model.predict(task.to(dev), fixed_inputs=fixed_inputs)

    def predict_map(self, context: Any = None, grid: Any = None, **kwargs: Any):
        """Maps of the prediction as an ``xarray.Dataset`` (see :func:`workbench.maps.predict_map`)."""
        from workbench.maps import predict_map

        return predict_map(self, context=context, grid=grid, **kwargs)

    def metrics_table(self) -> str:
        """The metrics as an aligned text table with units."""
        rows = [(k, self.metrics[k], METRICS.get(k, ("", ""))[0]) for k in METRICS if k in self.metrics]
        rows += [(k, v, "") for k, v in self.metrics.items() if k not in METRICS]
        width = max(len(k) for k, _, _ in rows)
        return "\n".join(f"{k:<{width}}  {v:>12.5g}  {u}" for k, v, u in rows)

    def save(self, path: str | Path) -> Path:
        """Write ``experiment.json``, ``model.pt``, ``history.json`` and ``metrics.json`` under ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        exp = self.experiment
        dataset_file = None
        if isinstance(exp.dataset, str):
            experiment = exp.to_dict()
        else:
            # An in-memory field is not JSON: it travels with the run as dataset.nc.
            from workbench.data.fields import save_field

            save_field(exp.dataset, path / "dataset.nc")
            dataset_file = "dataset.nc"
            experiment = {f.name: getattr(exp, f.name) for f in fields(exp)} | {"dataset": dataset_file}
        meta = {
            "experiment": experiment,
            "dataset_file": dataset_file,
            "box": self.box,
            "dim_x": self.dim_x,
            "dim_y": self.dim_y,
        }
        (path / "experiment.json").write_text(json.dumps(meta, indent=2))
        (path / "history.json").write_text(json.dumps(self.history.to_dict()))
        (path / "metrics.json").write_text(json.dumps(self.metrics, indent=2))
        save_checkpoint(path / "model.pt", model={k: v.cpu() for k, v in self.model.state_dict().items()})
        return path


def load_run(path: str | Path, device: str = "cpu") -> Run:
    """Read a run written by :meth:`Run.save`; errors name the missing or broken file."""
    path = Path(path)
    meta_file = path / "experiment.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{path} is not a saved run: {meta_file.name} is missing")
    meta = json.loads(meta_file.read_text())
    if meta.get("dataset_file"):
        meta["experiment"]["dataset"] = str((path / meta["dataset_file"]).resolve())
    exp = Experiment.from_dict(meta["experiment"])
    box = tuple(tuple(b) for b in meta["box"])
    torch.manual_seed(exp.seed)
    model = build_model(exp, meta["dim_x"], meta["dim_y"], box)
    state = load_checkpoint(path / "model.pt")
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"{path / 'model.pt'} does not fit the model of {exp}: {err}") from None
    model.to(resolve_device(device)).eval()
    history = History.from_dict(json.loads((path / "history.json").read_text()))
    metrics = json.loads((path / "metrics.json").read_text())
    return Run(exp, model, history, metrics, box, meta["dim_x"], meta["dim_y"])


def _infer_box(tasks: Sequence[Task]) -> Box:
    """The bounding box of all inputs of some tasks, as the training region of user-given data."""
    xs = [torch.cat([t.xc[t.mask_c], t.xt.flatten(0, 1)]) for t in tasks]
    x = torch.cat(xs)
    return tuple((float(lo), float(hi)) for lo, hi in zip(x.amin(0), x.amax(0), strict=True))


def run(
    experiment: Experiment,
    *,
    train_tasks: Iterable[Task] | None = None,
    test_tasks: Sequence[Task] | None = None,
    box: Box | None = None,
    callbacks: Iterable[Callback] = (),
    stop: threading.Event | None = None,
    progress: bool = True,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 0,
    evaluate: bool = True,
    on_evaluate: EvalProgress | None = None,
) -> Run:
    """Train and evaluate the experiment; user tasks replace the named dataset's samplers when given.

    ``train_tasks`` is an iterator or a collection of :class:`Task` (cycled); ``test_tasks`` a
    sequence of :class:`Task`. Their inputs should be normalised to the region the model should
    treat as its box (the training region): pass ``box`` or it is the bounding box of the tasks seen.
    ``on_evaluate(what, done, total)`` is told how far the evaluation after training has got.
    """
    exp = experiment
    exp.validate()
    sampler = None
    if train_tasks is None or test_tasks is None:
        sampler = make_dataset(exp.dataset)
    if train_tasks is None:
        train_tasks = sampler.batches(exp.batch_size, seed=exp.seed)
    if test_tasks is None:
        test_tasks = sampler.test_set(exp.test_tasks, batch_size=16)
    test_tasks = list(test_tasks)
    if not test_tasks:
        raise ValueError("test_tasks is empty: give at least one Task to evaluate on")
    first = test_tasks[0]
    if box is None:
        box = sampler.box if sampler is not None else _infer_box(test_tasks)
    box = tuple(tuple(float(v) for v in b) for b in box)
    if len(box) != first.dim_x:
        raise ValueError(f"box {box} has {len(box)} dimensions but the tasks have dim_x = {first.dim_x}")
    get_group(exp.group).check_dim(first.dim_x)

    torch.manual_seed(exp.seed)
    model = build_model(exp, first.dim_x, first.dim_y, box)
    keep = None
    if exp.validate_every:
        if not hasattr(sampler, "validation_set"):
            raise ValueError(
                f"Experiment.validate_every = {exp.validate_every} needs a dataset with a validation "
                f"split; {exp.dataset!r} has none (use validate_every=0)"
            )
        keep = KeepBest(model, sampler.validation_set(256, batch_size=16), every=exp.validate_every)
    history = train(
        model,
        train_tasks,
        exp.steps,
        lr=exp.lr,
        schedule=exp.lr_schedule,
        device=exp.device,
        callbacks=[*callbacks, *([keep] if keep else [])],
        stop=stop,
        progress=progress,
        checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every,
    )
    best_step = keep.restore() if keep is not None else None
    result = Run(exp, model, history, {}, box, first.dim_x, first.dim_y)
    if evaluate:
        result.metrics = evaluate_run(
            result,
            test_tasks,
            oracle=getattr(sampler, "oracle_loglik", None),
            sampler=sampler,
            on_evaluate=on_evaluate,
        )
        # Datasets with a known truth add their own scores (e.g. breaking field vs elevation).
        if hasattr(sampler, "extra_metrics"):
            result.metrics.update(sampler.extra_metrics(result))
        if keep is not None:
            result.metrics["best_step"] = float(best_step)
            result.metrics["val_loglik"] = keep.best
    return result


def is_strict(experiment: Experiment) -> bool:
    """Whether the run's model is strictly translation-equivariant (charged the symmetry headroom).

    A relaxation at strength 0 (or with no fixed-input channels) is the strict model itself.
    """
    exp = experiment
    relaxed = exp.relaxation != "strict" and exp.strength > 0 and exp.n_fixed > 0
    return exp.group != "none" and not relaxed


def evaluate_run(
    r: Run,
    test_tasks: Sequence[Task],
    oracle: Any = None,
    sampler: Any = None,
    on_evaluate: EvalProgress | None = None,
) -> dict[str, float]:
    """All metrics of a run on some test tasks (the oracle ones only when an oracle is given).

    A GP ``sampler`` adds the ceilings (``gaussian_loglik``, ``equivariant_loglik``; cached per
    test set, see :mod:`workbench.ceilings`) and the split of ``oracle_gap`` into
    ``gaussian_limit + symmetry_headroom + learning_shortfall``. ``on_evaluate(what, done, total)``
    hears before each part.
    """
    exp, model = r.experiment, r.model
    parts = ["log-likelihood", "strict component", "ceilings", "delta_equiv", "orbit error"]

    def tell(what: str) -> None:
        if on_evaluate is not None:
            on_evaluate(what, parts.index(what), len(parts))

    tell("log-likelihood")
    m: dict[str, float] = {"loglik": mean_loglik(model, test_tasks)}
    tell("strict component")
    m["loglik_strict"] = (
        mean_loglik(model, test_tasks, fixed_inputs=False) if model.has_fixed_inputs else m["loglik"]
    )
    tell("ceilings")
    if sampler is not None and hasattr(sampler, "posterior_components"):
        from workbench.ceilings import ceilings, gap_split

        c = ceilings(sampler, test_tasks)
        for key in ("oracle_loglik", "gaussian_loglik", "equivariant_loglik"):
            m[key] = c[key]
        m["oracle_gap"] = m["oracle_loglik"] - m["loglik"]
        m.update(gap_split(m, strict=is_strict(exp)))
    elif oracle is not None:
        m["oracle_loglik"] = oracle_loglik(oracle, test_tasks)
        m["oracle_gap"] = m["oracle_loglik"] - m["loglik"]
    tell("delta_equiv")
    m["delta_equiv"] = delta_equiv(model, test_tasks)
    tell("orbit error")
    # A free model is tested against translations, the symmetry it could have had.
    group = get_group("T" if exp.group == "none" else exp.group)
    m["orbit_error"] = orbit_error(model, test_tasks[:8], group, r.box, seed=exp.seed)
    steps = r.history.steps_done
    m["train_seconds"] = r.history.seconds
    m["steps_per_second"] = steps / r.history.seconds if r.history.seconds > 0 else 0.0
    m["n_parameters"] = float(sum(p.numel() for p in model.parameters() if p.requires_grad))
    if on_evaluate is not None:
        on_evaluate("done", len(parts), len(parts))
    return m
