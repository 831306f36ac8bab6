"""The layering of DESIGN.md, checked: import-linter's contracts (pyproject ``[tool.importlinter]``)
and no import cycle between any two modules of the library or the widgets.

Imports under ``if TYPE_CHECKING:`` are left out (they never run); imports inside functions count.
"""

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
#: What workbench.data may import from the rest of the library.
DATA_MAY_IMPORT = {"workbench.task", "workbench.geo"}


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("workbench", "widgets", exclude_type_checking_imports=True)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    modules = sorted(m for m in graph.modules if m.split(".")[0] in ("workbench", "widgets"))
    inside = set(modules)

    def imports(m: str) -> list[str]:
        return sorted(d for d in graph.find_modules_directly_imported_by(m) if d in inside)

    def visit(v: str) -> None:
        # Iterative Tarjan: the import graph is deep enough for Python's recursion limit to matter.
        work = [(v, iter(imports(v)))]
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(imports(w))))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))

    for m in modules:
        if m not in index:
            visit(m)
    return out


def test_import_contracts_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_no_import_cycles_between_modules():
    graph = _graph()
    cycles = _cycles(graph)
    lines = []
    for component in cycles:
        # One concrete loop through the component's first module, to say where to cut.
        first, members = component[0], set(component)
        back = [
            graph.find_shortest_chain(importer=d, imported=first)
            for d in sorted(graph.find_modules_directly_imported_by(first) & members)
        ]
        loop = min((c for c in back if c), key=len, default=())
        lines.append(
            f"{len(component)} modules: {', '.join(component)}\n  e.g. {first} -> {' -> '.join(loop)}"
        )
    assert not cycles, "import cycles:\n" + "\n".join(lines)


def test_the_data_layer_imports_only_tasks_and_geography():
    graph = _graph()
    data = {m for m in graph.modules if m == "workbench.data" or m.startswith("workbench.data.")}
    bad = sorted(
        f"{m} -> {d}"
        for m in data
        for d in graph.find_modules_directly_imported_by(m)
        if d.split(".")[0] == "workbench" and d not in data and d not in DATA_MAY_IMPORT
    )
    assert not bad, f"workbench.data may import only {sorted(DATA_MAY_IMPORT)} from the library: {bad}"
