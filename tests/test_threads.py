"""Thread defaults (workbench/threads.py), the kernel spec and `make lab` recipe, and a light CLI --help."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from workbench import threads

ROOT = Path(__file__).resolve().parent.parent
WAIT_AND_COUNT = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")


def _python(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter (env set before anything loads) and return its stdout."""
    base = {k: v for k, v in os.environ.items() if k not in WAIT_AND_COUNT}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**base, **env}, cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


REPORT = (
    "import os, sys, workbench; import torch; "
    "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'), torch.get_num_threads())"
)


def test_import_sets_the_short_spin_when_unset():
    spin, policy, _ = _python(REPORT).split()
    assert (spin, policy) == (threads.SPINCOUNT, "None")


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"GOMP_SPINCOUNT": "123"}, ("123", "None")),
        ({"OMP_WAIT_POLICY": "ACTIVE"}, ("None", "ACTIVE")),  # the user chose waiting: no spin added
        ({"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "7"}, ("7", "PASSIVE")),
    ],
)
def test_import_keeps_the_users_values(env, expected):
    spin, policy, _ = _python(REPORT, **env).split()
    assert (spin, policy) == expected


def test_users_thread_count_is_kept():
    assert _python(REPORT, OMP_NUM_THREADS="1").split()[2] == "1"


def test_nothing_changes_once_torch_is_loaded():
    code = "import os, torch, workbench; print(os.environ.get('GOMP_SPINCOUNT'))"
    assert _python(code) == "None"


def test_import_workbench_does_not_load_torch():
    code = "import sys, workbench, workbench.config, workbench.cli; print('torch' in sys.modules)"
    assert _python(code) == "False"


def test_thread_count_follows_the_cpus_we_may_use(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 8)
    assert threads.usable_cpus() == 1
    assert threads.default_env({})["OMP_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in threads.default_env({"OMP_NUM_THREADS": "4"})
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(threads, "_cgroup_cpus", lambda: 2.5)  # a container quota of 2.5 CPUs
    assert threads.usable_cpus() == 3
    monkeypatch.setattr(threads, "_cgroup_cpus", lambda: None)
    assert "OMP_NUM_THREADS" not in threads.default_env({})  # unrestricted: torch's own default


def test_workbench_run_is_the_function_after_the_submodule_loads():
    code = (
        "import workbench; from workbench.runs import Run; from workbench import run; "
        "print(callable(run), callable(workbench.run), 'loglik' in workbench.runs.METRICS)"
    )
    assert _python(code) == "True True True"


# ---- the Makefile: kernel spec and `make lab` ------------------------------------------------


def _make_n(target: str, **env: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # A fresh stamp and venv path so that make prints every recipe without touching the real .venv.
    base = {k: v for k, v in os.environ.items() if k not in WAIT_AND_COUNT}
    out = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, env={**base, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_make_lab_opens_the_start_notebook_without_news():
    recipe = _make_n("lab")
    lab = next(line for line in recipe.splitlines() if "jupyter lab" in line)
    assert lab.rstrip().endswith("notebooks/00_start_here.ipynb")
    assert "--LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb" in lab
    assert "--ServerApp.root_dir=." in lab
    assert "--LabApp.news_url=None" in lab
    assert "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate" in lab
    # The settings override, written by the same make run, turns the news pop-up off.
    line = next(line for line in recipe.splitlines() if "overrides.json" in line and "printf" in line)
    text = re.search(r"'(\{.*\})'", line).group(1)
    settings = json.loads(text)
    assert settings == {
        "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}
    }
    assert ".venv/share/jupyter/lab/settings/overrides.json" in line


def test_kernel_spec_carries_the_thread_env(tmp_path):
    recipe = _make_n("lab")
    install = next(line for line in recipe.splitlines() if "ipykernel install" in line)
    assert "kernel_args()" in recipe  # the --env arguments come from workbench/threads.py
    # Run the same install into a scratch prefix and read the kernel.json it writes.
    args = _python("import workbench.threads as t; print(t.kernel_args())").split()
    assert args == ["--env", "GOMP_SPINCOUNT", threads.SPINCOUNT]
    assert "--sys-prefix" in install
    out = subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--prefix", str(tmp_path), "--name", "python3", *args],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    spec = json.loads((tmp_path / "share/jupyter/kernels/python3/kernel.json").read_text())
    assert spec["env"] == {"GOMP_SPINCOUNT": threads.SPINCOUNT}


def test_kernel_spec_keeps_the_users_wait_policy():
    args = _python("import workbench.threads as t; print(t.kernel_args())", OMP_WAIT_POLICY="PASSIVE")
    assert args.split() == ["--env", "OMP_WAIT_POLICY", "PASSIVE"]


# ---- the CLI ---------------------------------------------------------------------------------


def test_run_help_lists_every_field_with_default_and_choices_without_torch():
    from workbench.cli import field_choices
    from workbench.config import Experiment

    code = (
        "import sys, contextlib, io\n"
        "from workbench.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n"
        "        main(['run', '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(buf.getvalue())\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    out = _python(code)
    assert out.rstrip().endswith("TORCH False")
    text = " ".join(out.split())  # argparse wraps lines; compare with single spaces
    for f in fields(Experiment):
        flag = f"--{f.name.replace('_', '-')}"
        assert flag in text, flag
        section = text.split(f"{flag} {f.name.upper()} ", 1)[1].split(" --", 1)[0]
        assert f"default: {f.default}" in section, (flag, section)
        for choice in field_choices().get(f.name, ()):
            assert choice in section, (flag, choice)


def test_field_choices_match_the_registries():
    from workbench.cli import field_choices
    from workbench.config import DEVICES, MODELS, RELAXATIONS, SCHEDULES
    from workbench.data.registry import DATASETS
    from workbench.groups import GROUPS

    c = field_choices()
    assert set(c["group"]) == set(GROUPS)
    assert c["dataset"] == tuple(DATASETS)
    assert (c["model"], c["relaxation"]) == (tuple(MODELS), tuple(RELAXATIONS))
    assert (c["device"], c["lr_schedule"]) == (tuple(DEVICES), tuple(SCHEDULES))


def test_every_field_has_its_own_help_line():
    from workbench.cli import FIELD_HELP
    from workbench.config import Experiment

    assert set(FIELD_HELP) == {f.name for f in fields(Experiment)}


def test_bad_value_is_a_clear_error_not_a_traceback(capsys):
    from workbench.cli import main

    assert main(["run", "--model", "nonsense"]) == 2
    assert "conv, transformer, deepsets" in capsys.readouterr().err
