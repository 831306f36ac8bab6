"""Torch thread defaults that stay fast when the machine is busy (a shared JupyterHub, a busy laptop).

PyTorch's CPU build runs its kernels on GNU OpenMP (libgomp). After each parallel region libgomp's
idle threads spin for 300,000 iterations before they sleep. When other processes want the same cores,
that spinning steals time slices from the thread doing the work, and a training step that takes 8 ms
on a quiet machine takes hundreds of ms (``bench/bench_threads.py``). A short spin
(``GOMP_SPINCOUNT=1000``) avoids that: on a shared machine it was 3-20x faster than the default and
about twice as fast as 10,000 spins. Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``, no spin) did as
well when busy but cost ~15% on a quiet machine; a short spin should still bridge the microsecond
gaps between parallel regions there (not measured on an idle machine yet: see threads.json).

libgomp reads these variables once, when torch loads, so :func:`configure` runs at the top of
``workbench/__init__.py`` (before anything imports torch) and the Jupyter kernel spec that the
Makefile installs carries them too (:func:`kernel_env`). Values the user has set are never changed.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

#: Spin iterations before an idle OpenMP thread sleeps (libgomp's default is 300,000).
SPINCOUNT = "1000"

#: Variables that mean the user has chosen how OpenMP threads wait; then we leave waiting alone.
WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def _cgroup_cpus() -> float | None:
    """CPUs allowed by a cgroup CPU quota (containers, JupyterHub pods), or None when unlimited."""
    try:  # cgroup v2: "QUOTA PERIOD" or "max PERIOD"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cpus() -> int:
    """How many CPUs this process may run on: its affinity mask, capped by a cgroup quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        n = os.cpu_count() or 1
    quota = _cgroup_cpus()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def default_env(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """The variables :func:`configure` would set in ``environ`` (default ``os.environ``): unset ones only."""
    environ = os.environ if environ is None else environ
    out: dict[str, str] = {}
    if not any(v in environ for v in WAIT_VARS):
        out["GOMP_SPINCOUNT"] = SPINCOUNT
    # Torch's default is the machine's core count; in a pinned process or a container with a CPU
    # quota that oversubscribes the CPUs we actually get. Unrestricted: keep torch's own choice.
    cpus = usable_cpus()
    if "OMP_NUM_THREADS" not in environ and cpus < (os.cpu_count() or cpus):
        out["OMP_NUM_THREADS"] = str(cpus)
    return out


def configure(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the thread defaults that are unset; returns what was set (nothing once torch is loaded)."""
    environ = os.environ if environ is None else environ
    if environ is os.environ and "torch" in sys.modules:
        # libgomp has read its environment already; changing it now would only confuse children.
        return {}
    out = default_env(environ)
    environ.update(out)
    return out


def kernel_env() -> dict[str, str]:
    """The OpenMP waiting variables for a Jupyter kernel spec: the user's values if set, else ours."""
    env = dict(os.environ)
    configure(env)
    # Only the waiting variables: a thread count in the spec would override the one a caller sets
    # (``make test`` runs notebooks with OMP_NUM_THREADS=2), since kernel spec values win.
    return {v: env[v] for v in WAIT_VARS if v in env}


def kernel_args() -> str:
    """:func:`kernel_env` as ``ipykernel install`` arguments: ``--env NAME VALUE ...`` (the Makefile)."""
    return " ".join(f"--env {k} {v}" for k, v in kernel_env().items())
