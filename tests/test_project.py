"""Project hygiene that CI would not otherwise see: dependency lists agree, notebooks are committed clean."""

import json
import re
import subprocess
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda names some packages differently from PyPI.
CONDA_TO_PYPI = {"pytorch": "torch", "netcdf4": "netCDF4"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0]


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = {_name(s).lower() for s in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {
        CONDA_TO_PYPI.get(_name(s), _name(s)).lower()
        for s in env["dependencies"]
        if isinstance(s, str) and _name(s) not in ("python", "pip")
    }
    assert pip == conda, f"only in pyproject: {pip - conda}; only in environment.yml: {conda - pip}"


def _project_files() -> list[Path]:
    """Files the project ships: git-tracked when in a checkout, else everything outside build outputs."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
        ).stdout
        return [ROOT / f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        skip = {".venv", ".git", "build", "dist"}
        return [
            p
            for p in ROOT.rglob("*")
            if p.is_file() and not skip & set(p.parts) and not any(x.endswith(".egg-info") for x in p.parts)
        ]


def test_torch_pin_lives_in_one_place():
    hits = [
        p
        for p in _project_files()
        if p.is_file()
        and p.suffix in {".toml", ".yml", ".txt", ".cfg", ""}
        and "2.13.0" in p.read_text(errors="ignore")
    ]
    assert [p.name for p in hits] == ["Makefile"]


def test_notebooks_are_committed_without_outputs():
    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, nb_path.name
