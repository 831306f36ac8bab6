"""Training: AdamW on the mean log-likelihood per target, with progress, callbacks, stop and checkpoints."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from workbench.checkpoint import load_checkpoint, save_checkpoint
from workbench.config import SCHEDULES
from workbench.evaluate import mean_loglik
from workbench.models.base import NeuralProcess
from workbench.task import Task

Callback = Callable[[int, float], None]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class History:
    """Loss and learning rate per step (loss: negative mean log-likelihood per target) and wall time."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False
    lr: list[float] = field(default_factory=list)

    @property
    def steps_done(self) -> int:
        """Number of optimisation steps taken so far."""
        return self.step[-1] if self.step else 0

    def to_dict(self) -> dict:
        """JSON-able form."""
        return {
            "step": self.step,
            "loss": self.loss,
            "seconds": self.seconds,
            "stopped": self.stopped,
            "lr": self.lr,
        }

    @classmethod
    def from_dict(cls, d: dict) -> History:
        """Inverse of :meth:`to_dict`."""
        lr = list(d.get("lr", []))  # runs saved before the schedule existed have no rates
        return cls(list(d["step"]), list(d["loss"]), float(d["seconds"]), bool(d["stopped"]), lr)


class KeepBest:
    """Callback for early stopping: every ``every`` steps, score ``model`` on ``tasks`` (mean
    log-likelihood per target, e.g. a validation split) and keep a copy of the best weights;
    :meth:`restore` loads them back. Small real datasets (Colorado) overfit; this picks the step.
    """

    def __init__(self, model: NeuralProcess, tasks: Iterable[Task], every: int = 250) -> None:
        if every < 1:
            raise ValueError(f"every must be a positive number of steps, got {every}")
        self.model, self.tasks, self.every = model, list(tasks), every
        self.scores: list[tuple[int, float]] = []
        self.best, self.best_step = -math.inf, 0
        self._state: dict[str, torch.Tensor] | None = None

    def __call__(self, step: int, loss: float) -> None:  # noqa: D102
        if step % self.every:
            return
        score = mean_loglik(self.model, self.tasks)
        self.model.train()
        self.scores.append((step, score))
        if score > self.best:
            self.best, self.best_step = score, step
            self._state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def restore(self) -> int:
        """Load the best weights seen (nothing if none was scored); returns their step."""
        if self._state is not None:
            self.model.load_state_dict(self._state)
        return self.best_step


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU; asking for CUDA without one is a clear error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but PyTorch sees no CUDA GPU; use 'auto' or 'cpu'")
    return device


def make_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    """AdamW; the fused kernel when the device supports it (several times faster per step on CPU)."""
    try:
        return torch.optim.AdamW(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(model.parameters(), lr=lr)


def _endless(tasks: Iterable[Task]) -> Iterator[Task]:
    """Cycle a re-iterable collection; pass an iterator through (it must not run dry)."""
    if isinstance(tasks, Iterator):
        yield from tasks
        return
    while True:
        empty = True
        for task in tasks:
            empty = False
            yield task
        if empty:
            raise ValueError("the training tasks are empty")


def train(
    model: NeuralProcess,
    tasks: Iterable[Task],
    steps: int,
    *,
    lr: float = 5e-4,
    schedule: str = "constant",
    clip: float = 0.5,
    device: str | torch.device = "auto",
    callbacks: Iterable[Callback] = (),
    stop: threading.Event | None = None,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: str | Path | None = None,
    progress: bool = True,
    history: History | None = None,
) -> History:
    """Train ``model`` for ``steps`` more steps on ``tasks`` (an iterator, or a collection to cycle).

    ``schedule="cosine"`` decays the learning rate from ``lr`` to zero over these ``steps`` (a resumed
    call starts a new decay over its own steps); ``"constant"`` keeps it.
    ``callbacks`` get ``(step, loss)`` after every step; setting ``stop`` ends training after the
    current step. With ``checkpoint_path`` a checkpoint (model, optimiser, step, history) is written
    every ``checkpoint_every`` steps and at the end; ``resume`` continues from such a file. A NaN
    loss raises :class:`TrainingDiverged` and leaves the last good checkpoint in place.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule = {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    dev = resolve_device(device)
    model.to(dev)
    opt = make_optimizer(model, lr)
    history = history or History()
    if resume is not None:
        state = load_checkpoint(resume, map_location=dev)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        for group in opt.param_groups:  # the checkpoint may hold a decayed rate; this call starts at lr
            group["lr"] = lr
        history = History.from_dict(state["history"])
    start = history.steps_done
    stream = _endless(tasks)
    callbacks = list(callbacks)
    last_good: int | None = None

    def checkpoint() -> None:
        nonlocal last_good
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                model=model.state_dict(),
                optimizer=opt.state_dict(),
                history=history.to_dict(),
            )
            last_good = history.steps_done

    model.train()
    t0 = time.perf_counter()
    bar = tqdm(total=steps, disable=not progress, desc="training", unit="step", leave=False)
    try:
        for i in range(start + 1, start + steps + 1):
            task = next(stream).to(dev)
            loss = -model.loglik(task).mean()
            value = float(loss.detach())
            if not math.isfinite(value):
                where = (
                    f"; the last good checkpoint (step {last_good}) is {checkpoint_path}" if last_good else ""
                )
                raise TrainingDiverged(
                    f"loss became {value} at step {i}{where}. Try a smaller learning rate."
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            history.lr.append(opt.param_groups[0]["lr"])
            opt.step()
            if schedule == "cosine":
                # Set the rate for the next step; the optimiser state is untouched, so resume still works.
                for group in opt.param_groups:
                    group["lr"] = 0.5 * lr * (1.0 + math.cos(math.pi * (i - start) / steps))
            history.step.append(i)
            history.loss.append(value)
            bar.update()
            if i % 50 == 0 or i == start + steps:
                bar.set_postfix(loss=f"{value:.3f}")
            for cb in callbacks:
                cb(i, value)
            if checkpoint_every and i % checkpoint_every == 0:
                history.seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                checkpoint()
            if stop is not None and stop.is_set():
                history.stopped = True
                break
    finally:
        bar.close()
        history.seconds += time.perf_counter() - t0
    model.eval()
    checkpoint()
    return history
