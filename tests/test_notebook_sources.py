"""Each notebook's jupytext source (``notebooks/NN_name.py``, percent format) and its ``.ipynb`` agree.

The ``.py`` files are what reviewers read and ruff lints; the ``.ipynb`` files are what JupyterLab opens
and papermill runs. After editing either, ``make notebooks`` (``jupytext --sync``) brings the other in line.
"""

import json
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
IPYNBS = sorted(NOTEBOOKS.glob("*.ipynb"))
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
FIX = "run `make notebooks` (jupytext --sync notebooks/*.py)"


def _cells(cells) -> list[tuple[str, str, dict]]:
    """Cell type, source and metadata of each cell (the tags, e.g. papermill's ``parameters``)."""
    out = []
    for c in cells:
        source = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        out.append((c["cell_type"], source, dict(c.get("metadata", {}))))
    return out


def test_every_notebook_has_a_source_and_every_source_a_notebook():
    assert IPYNBS, "no notebooks found"
    assert [p.stem for p in IPYNBS] == [p.stem for p in SOURCES]


def test_pairing_is_configured():
    config = (NOTEBOOKS / "jupytext.toml").read_text()
    assert 'formats = "ipynb,py:percent"' in config


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.stem)
def test_source_and_notebook_agree(ipynb: Path):
    source = ipynb.with_suffix(".py")
    from_source = jupytext.read(source)
    notebook = json.loads(ipynb.read_text())
    expected, actual = _cells(from_source.cells), _cells(notebook["cells"])
    name = ipynb.name
    assert len(expected) == len(actual), f"{name}: {len(actual)} cells, the source {len(expected)}; {FIX}"
    for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
        assert e[0] == a[0], f"{name} cell {i}: {a[0]} in the notebook, {e[0]} in the source; {FIX}"
        assert e[1] == a[1], f"{name} cell {i}: the source differs from the notebook; {FIX}"
        assert e[2] == a[2], f"{name} cell {i}: metadata {a[2]} in the notebook, {e[2]} in the source; {FIX}"
    assert from_source.metadata.get("kernelspec") == notebook["metadata"].get("kernelspec"), ipynb.name


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.stem)
def test_notebook_is_ready_for_papermill(ipynb: Path):
    notebook = json.loads(ipynb.read_text())
    assert notebook["metadata"]["kernelspec"]["language"] == "python", ipynb.name
    tagged = [c for c in notebook["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{ipynb.name}: {len(tagged)} cells tagged 'parameters'"
