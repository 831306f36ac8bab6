"""Training: AdamW on the mean log-likelihood per target, with progress, callbacks, stop and checkpoints."""

from __future__ import annotations

import math
import random
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from workbench.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from workbench.config import DEFAULT_LR, DEFAULT_SCHEDULE, SCHEDULES
from workbench.data.prefetch import prefetch as prefetch_tasks
from workbench.evaluate import mean_loglik
from workbench.models import assemble
from workbench.models.base import NeuralProcess
from workbench.models.relaxations import RELAXATIONS
from workbench.task import Task

Callback = Callable[[int, float], None]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class TasksExhausted(ValueError):
    """The training task iterator ran dry before the steps asked for; the work so far is checkpointed."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during training: the step in progress finished and a final checkpoint was written."""

    def __init__(self, message: str, step: int, checkpoint: Path | None) -> None:
        super().__init__(message)
        self.step, self.checkpoint = step, checkpoint


@dataclass
class History:
    """Loss and learning rate per step (loss: negative mean log-likelihood per target, plus the
    relaxation's penalty where it has one) and wall time."""

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

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to continue early stopping exactly (scores, best score, best weights)."""
        scores = [[step, score] for step, score in self.scores]
        return {"scores": scores, "best": self.best, "best_step": self.best_step, "weights": self._state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.scores = [(int(step), float(score)) for step, score in state["scores"]]
        self.best, self.best_step, self._state = (
            float(state["best"]),
            int(state["best_step"]),
            state["weights"],
        )

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


def _endless(tasks: Iterable[Task], skip: int = 0) -> Iterator[Task]:
    """Cycle a re-iterable collection from item ``skip`` on; pass an iterator through as it is (the
    caller positions it, e.g. ``sampler.batches(..., start=step)``)."""
    if isinstance(tasks, Iterator):
        yield from tasks
        return
    first = True
    while True:
        empty = True
        # A resumed run continues the cycle where the checkpoint left it.
        for task in (
            islice(tasks, skip % len(tasks), None) if first and skip and hasattr(tasks, "__len__") else tasks
        ):
            empty = False
            yield task
        first = False
        if empty:
            raise ValueError("the training tasks are empty")


def rng_state() -> dict[str, Any]:
    """Every random state training may draw from: torch CPU, CUDA (when in use), numpy and Python."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "python": [int(version), torch.tensor(internal, dtype=torch.int64), py_gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", keys.cpu().numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, py_gauss = state["python"]
    random.setstate((version, tuple(int(v) for v in internal.tolist()), py_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


@contextmanager
def _ctrl_c_finishes_step(active: bool) -> Iterator[threading.Event]:
    """While active (main thread only), the first Ctrl-C sets the event: the step in progress finishes
    and a checkpoint is written. A second Ctrl-C interrupts at once."""
    pressed = threading.Event()
    if not active or threading.current_thread() is not threading.main_thread():
        yield pressed
        return
    previous = signal.getsignal(signal.SIGINT)
    previous = previous if previous is not None else signal.default_int_handler

    def handler(signum: int, frame: Any) -> None:
        if pressed.is_set():
            raise KeyboardInterrupt
        pressed.set()
        print(
            "workbench: Ctrl-C: finishing this step and writing a checkpoint (press again to abort now)",
            file=sys.stderr,
        )

    signal.signal(signal.SIGINT, handler)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


#: Linear warm-up of the learning rate over the first steps of a schedule (at most 5% of it): the
#: higher peak rates that learn fastest (``bench/bench_recipe.py``) otherwise upset Adam's first steps.
WARMUP_STEPS = 100


#: Steps between reads of the loss on a GPU (see ``train(sync_every=)``).
SYNC_EVERY = 25


def _loss_function(
    model: NeuralProcess, dev: torch.device, amp: bool, compile: bool | str
) -> Callable[[Task], torch.Tensor]:
    """The training loss of a task (negative mean log-likelihood per target, plus the relaxation's
    penalty, e.g. the residual pathway's weight decay; 0 for most), as ``train`` asked for it: under
    bfloat16 autocast with ``amp``, through ``torch.compile`` with ``compile``."""

    def loss(task: Task) -> torch.Tensor:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            return -model.loglik(task).mean() + model.penalty()

    if not compile:
        return loss
    backend = compile if isinstance(compile, str) else "inductor"
    compiled = torch.compile(loss, backend=backend, dynamic=None)

    def loss_compiled(task: Task) -> torch.Tensor:
        return compiled(task.for_model(model))

    return loss_compiled


def _rate(schedule: str, lr: float, step: int, begin: int, length: int) -> float:
    """Learning rate of ``step``: a linear warm-up from ``begin + 1`` (:data:`WARMUP_STEPS`, at most
    5% of ``length``), then constant, or a cosine from ``lr`` down to zero over ``length`` steps."""
    warm = min(WARMUP_STEPS, max(length // 20, 1))
    ramp = min(1.0, (step - begin) / warm)
    if schedule == "constant":
        return lr * ramp
    return ramp * 0.5 * lr * (1.0 + math.cos(math.pi * (step - 1 - begin) / length))


def _restore(path: Path, state: dict[str, Any], model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
    """Load a checkpoint's model and optimiser; a checkpoint of another model is a clear error."""
    try:
        model.load_state_dict(state["model"])
    except KeyError:
        raise CheckpointError(f"{path} has no model weights (keys: {', '.join(state)})") from None
    except RuntimeError as err:
        what = str(err).splitlines()[0] + " " + " ".join(str(err).splitlines()[1:2])
        raise CheckpointError(
            f"{path} does not fit this model ({type(model).__name__}): it was written for a different "
            f"model or size ({what.strip()})"
        ) from None
    try:
        opt.load_state_dict(state["optimizer"])
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{path} has no optimiser state that fits this model: {err}") from None


def train(
    model: NeuralProcess,
    tasks: Iterable[Task],
    steps: int,
    *,
    lr: float = DEFAULT_LR,
    schedule: str = DEFAULT_SCHEDULE,
    clip: float = 0.5,
    device: str | torch.device = "auto",
    callbacks: Iterable[Callback] = (),
    stop: threading.Event | None = None,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: str | Path | None = None,
    progress: bool = True,
    history: History | None = None,
    checkpoint_extra: dict[str, Any] | None = None,
    prefetch: int | None = None,
    sync_every: int | None = None,
    amp: bool = False,
    compile: bool | str = False,
    desc: str = "training",
) -> History:
    """Train ``model`` for ``steps`` more steps on ``tasks`` (an iterator, or a collection to cycle).

    ``schedule="cosine"`` decays the learning rate from ``lr`` to zero over these ``steps``; a resumed
    call continues the checkpoint's decay (to zero at the end of this call). ``"constant"`` keeps it.
    ``callbacks`` get ``(step, loss)`` after every step; setting ``stop`` ends training after the
    current step. With ``checkpoint_path`` a checkpoint is written every ``checkpoint_every`` steps, at
    the end, after ``stop`` and after Ctrl-C (which then raises :class:`TrainingInterrupted`). A
    checkpoint holds the model, optimiser, step, history, schedule, the state of callbacks that have
    ``state_dict`` (:class:`KeepBest`), every random state and ``checkpoint_extra``. It is written only
    from weights whose loss was seen finite (the state of step n is written once step n + 1's loss is
    finite; the last state once a forward pass on the last batch is), so a NaN loss raises
    :class:`TrainingDiverged` naming a checkpoint that still works.

    ``resume`` continues from such a file exactly; ``tasks`` must then continue where the checkpoint
    stopped (``sampler.batches(..., start=step)``; a collection is cycled on from that step).

    ``prefetch``: draw that many batches ahead in a background thread (:mod:`workbench.data.prefetch`;
    the same tasks for a source with its own generator, as ``sampler.batches``). ``None``: 2 on a GPU,
    where the CPU idles during a step, and 0 on the CPU, where the step already uses every core.

    For a GPU (each is the same computation on the CPU, tested there):

    - ``sync_every``: read the loss back to the host every this many steps, not every step (a read
      waits for the GPU to finish). ``None``: 1 on the CPU, :data:`SYNC_EVERY` on CUDA. History and
      callbacks then hear of the steps in groups; a NaN loss is still never checkpointed (a
      checkpoint step reads its loss at once) and raises :class:`TrainingDiverged` at the next read.
    - ``amp``: run the model under ``torch.autocast`` in bfloat16 (the likelihood's arithmetic with
      float32 targets stays float32).
    - ``compile``: ``torch.compile`` the loss (``True``: the default backend, inductor; a string
      names another backend, e.g. ``"aot_eager"``). The first steps then include compiling.

    The model's relaxation plug-in has two hooks here (both do nothing for most): before the first
    step, ``relaxation.prepare`` (symmetry cloning's teacher and clone; the tasks it draws are trained
    on again, in order, so a resume stays exact; its time counts in ``History.seconds``; the
    ``model.relaxation_state`` it leaves is checkpointed), and on every training batch, never in
    evaluation, ``relaxation.augment`` (data augmentation; it draws from torch's global generator,
    which checkpoints keep). ``desc`` labels the progress bar.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule = {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    dev = resolve_device(device)
    model.to(dev)
    opt = make_optimizer(model, lr)
    history = history or History()
    callbacks = list(callbacks)
    stateful = [cb for cb in callbacks if hasattr(cb, "state_dict") and hasattr(cb, "load_state_dict")]
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    begin, rng, last_good = None, None, None
    if resume is not None:
        resume = Path(resume)
        state = load_checkpoint(resume, map_location=dev)
        _restore(resume, state, model, opt)
        history = History.from_dict(state["history"])
        _restore_callbacks(resume, state.get("callbacks", []), stateful)
        if state.get("relaxation_state"):  # e.g. the clone symmetry cloning holds the model to
            model.relaxation_state = dict(state["relaxation_state"])
        sched = state.get("schedule") or {}
        if sched.get("name") == schedule and sched.get("lr") == lr:
            begin = int(sched["begin"])  # the same decay goes on
        rng = state.get("rng")
        if rng is None:
            warnings.warn(
                f"{resume} holds no random states (an older checkpoint): resume is not exact", stacklevel=2
            )
        last_good = (history.steps_done, resume)
    start = history.steps_done
    begin = start if begin is None else begin
    length = max(start + steps - begin, 1)
    stream = _endless(tasks, skip=start if resume is not None else 0)
    relaxation = getattr(model, "relaxation", None)
    if relaxation is not None:
        fit = partial(train, lr=lr, schedule=schedule, clip=clip, device=dev, progress=progress)
        stream, spent = _prepare(relaxation, model, stream, steps, fit, lr, dev, progress)
        history.seconds += spent
    depth = (2 if dev.type == "cuda" else 0) if prefetch is None else int(prefetch)
    if depth > 0:
        stream = prefetch_tasks(stream, depth=depth)
    # A fresh run keeps its starting state once the first loss is finite: something to go back to.
    pending = rng_state() if path is not None and resume is None else None
    sync = (1 if dev.type == "cpu" else SYNC_EVERY) if sync_every is None else int(sync_every)
    if sync < 1:
        raise ValueError(f"sync_every must be a positive number of steps, got {sync_every}")
    loss_of = _loss_function(model, dev, amp, compile)
    unread: list[tuple[int, torch.Tensor | float, float]] = []  # (step, loss, rate) not yet in history
    t0 = time.perf_counter()

    def write(step: int, rng_now: dict[str, Any]) -> None:
        nonlocal last_good, t0
        now = time.perf_counter()
        history.seconds += now - t0
        t0 = now
        save_checkpoint(
            path,
            model=model.state_dict(),
            optimizer=opt.state_dict(),
            history=history.to_dict(),
            step=step,
            rng=rng_now,
            schedule={"name": schedule, "lr": lr, "begin": begin, "length": length},
            callbacks=[cb.state_dict() for cb in stateful],
            **_relaxation_state(model),
            **(checkpoint_extra or {}),
        )
        last_good = (step, path)

    def kept() -> str:
        if last_good is None:
            return "no checkpoint was kept (pass checkpoint_path= to keep one)"
        return f"the last good checkpoint (step {last_good[0]}) is {last_good[1]}"

    if rng is not None:
        set_rng_state(rng)
    model.train()
    task, ran_dry = None, False
    bar = tqdm(total=steps, disable=not progress, desc=desc, unit="step", leave=False)

    def flush() -> None:
        """Read the unread losses (one host sync), record them and tell the callbacks, in step order."""
        if not unread:
            return
        tensors = [v for _, v, _ in unread if isinstance(v, torch.Tensor)]
        read = iter(torch.stack(tensors).tolist() if tensors else [])
        values = [next(read) if isinstance(v, torch.Tensor) else v for _, v, _ in unread]
        steps_and_rates = [(step, rate) for step, _, rate in unread]
        unread.clear()
        for (step, rate), value in zip(steps_and_rates, values, strict=True):
            if not math.isfinite(value):
                raise TrainingDiverged(
                    f"loss became {value} at step {step}; {kept()}. Try a smaller learning rate."
                )
            history.lr.append(rate)
            history.step.append(step)
            history.loss.append(value)
            if step % 50 == 0 or step == start + steps:
                bar.set_postfix(loss=f"{value:.3f}")
            for cb in callbacks:
                cb(step, value)

    try:
        with _ctrl_c_finishes_step(path is not None) as ctrl_c:
            for i in range(start + 1, start + steps + 1):
                try:
                    task = next(stream).for_model(model)
                except StopIteration:
                    ran_dry = True
                    break
                if relaxation is not None:
                    task = relaxation.augment(model, task)  # data augmentation; unchanged for most
                rate = _rate(schedule, lr, i, begin, length)
                for group in opt.param_groups:
                    group["lr"] = rate
                loss = loss_of(task)
                value: torch.Tensor | float = loss.detach()
                if sync == 1 or pending is not None:
                    flush()  # the steps before this one first: a checkpoint needs them all finite
                    value = float(value)
                    if not math.isfinite(value):
                        raise TrainingDiverged(
                            f"loss became {value} at step {i}; {kept()}. Try a smaller learning rate."
                        )
                    if pending is not None:  # the weights of step i - 1 just gave a finite loss
                        write(i - 1, pending)
                        pending = None
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                bar.update()
                unread.append((i, value, rate))
                if len(unread) >= sync or i == start + steps:
                    flush()
                if path is not None and checkpoint_every and i % checkpoint_every == 0:
                    pending = rng_state()  # written at the next step, once these weights give a finite loss
                if (stop is not None and stop.is_set()) or ctrl_c.is_set():
                    flush()
                    history.stopped = True
                    break
            flush()
    finally:
        bar.close()
        if depth > 0:
            stream.close()  # stops the background thread
        history.seconds += time.perf_counter() - t0
        t0 = time.perf_counter()
    model.eval()
    if path is not None:
        _final_checkpoint(model, task, dev, history, write, kept)
    done = history.steps_done
    if ran_dry:
        raise TasksExhausted(
            f"the training tasks ran out after {done - start} steps (step {done} of {start + steps}): "
            f"give an endless stream (sampler.batches) or a collection to cycle; {kept()}"
        )
    if ctrl_c.is_set():
        raise TrainingInterrupted(
            f"training interrupted (Ctrl-C) after step {done}; {kept()}: continue with "
            "train(..., resume=PATH), run(..., resume=PATH) or `workbench run --resume PATH`",
            done,
            last_good[1] if last_good else None,
        )
    return history


def _prepare(
    relaxation: Any,
    model: NeuralProcess,
    stream: Iterator[Task],
    steps: int,
    fit: Callable[..., History],
    lr: float,
    dev: torch.device,
    progress: bool,
) -> tuple[Iterator[Task], float]:
    """Run ``relaxation.prepare`` on tasks borrowed from ``stream``; the stream with those tasks put
    back in front (so the data phase sees the same tasks in the same order as without it, and a
    resumed run, whose stream starts at its step, stays exact) and the seconds it took."""
    seen: list[Task] = []

    def borrowed() -> Iterator[Task]:
        for task in stream:
            seen.append(task)
            yield task

    t0 = time.perf_counter()
    relaxation.prepare(
        model, borrowed(), steps=steps, lr=lr, device=dev, progress=progress, fit=fit, build=twin
    )
    spent = time.perf_counter() - t0
    return (chain(seen, stream) if seen else stream), spent


def twin(model: NeuralProcess, relaxation: str) -> NeuralProcess:
    """``model``'s experiment built with another relaxation, untrained, on the model's device.

    For models that keep their experiment's ``parts`` (symmetry cloning's student: its teacher is
    ``twin(student, "strict")``); a relaxation that builds a free model and wraps it is not offered.
    """
    parts = getattr(model, "parts", None)
    plug = RELAXATIONS.get(relaxation)
    if parts is None or plug is None or plug.free_base:
        raise ValueError(
            f"cannot build a {relaxation!r} twin of {type(model).__name__}: it needs a model that keeps "
            "its experiment's parts and a relaxation that builds its own network (e.g. 'strict')"
        )
    return assemble(parts, model.dim_y, plug).to(next(model.parameters()).device)


def _relaxation_state(model: NeuralProcess) -> dict[str, Any]:
    """What a checkpoint keeps of ``relaxation.prepare`` (nothing for most relaxations)."""
    state = getattr(model, "relaxation_state", None)
    return {"relaxation_state": state} if state else {}


def _final_checkpoint(
    model: NeuralProcess,
    task: Task | None,
    dev: torch.device,
    history: History,
    write: Callable[[int, dict[str, Any]], None],
    kept: Callable[[], str],
) -> None:
    """Write the end state, once a forward pass of the final weights on the last batch is finite."""
    rng = rng_state()
    if task is not None:
        # fork_rng: this check must not move the random streams an exact resume depends on.
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), torch.no_grad():
            value = float(-model.loglik(task).mean())
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"the weights after step {history.steps_done} give loss {value}; {kept()}. "
                "Try a smaller learning rate."
            )
    write(history.steps_done, rng)


def _restore_callbacks(path: Path, states: list, stateful: list) -> None:
    """Give callbacks with state (KeepBest) what the checkpoint kept of them, in order."""
    if len(states) != len(stateful):
        warnings.warn(
            f"{path} holds the state of {len(states)} stateful callback(s) but this call has "
            f"{len(stateful)}: their state starts afresh",
            stacklevel=3,
        )
        return
    for cb, state in zip(stateful, states, strict=True):
        cb.load_state_dict(state)
