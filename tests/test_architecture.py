"""The package's folders are its layers: the import graph has no cycle and nothing imports
upwards; science is MPI-free; I/O knows no science; no module is too long; no module keeps
state that a run fills in."""

import ast


import pytest

from conftest import ROOT

PKG = ROOT / "proxy_pixel_pipeline"

#: Lowest first.  A module may import modules of its own rank or lower.  The registry and
#: the settings are declarations (they import nothing of the package), readable from any layer.
RANKS = [
    ("proxy_pixel_pipeline", 0), ("proxy_pixel_pipeline.errors", 0),
    ("proxy_pixel_pipeline.flags", 0), ("proxy_pixel_pipeline.runtime.registry", 0),
    ("proxy_pixel_pipeline.runtime.settings", 0),
    ("proxy_pixel_pipeline.io", 1),
    ("proxy_pixel_pipeline.science", 2),
    ("proxy_pixel_pipeline.simulate", 3),
    ("proxy_pixel_pipeline.runtime", 3),
    ("proxy_pixel_pipeline.stages", 4),
    ("proxy_pixel_pipeline.score", 5), ("proxy_pixel_pipeline.plots", 5),
    ("proxy_pixel_pipeline.report", 5),
    ("proxy_pixel_pipeline.runtime.cli", 6), ("proxy_pixel_pipeline.__main__", 6),
]


def _name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules():
    return {_name(p): p for p in PKG.rglob("*.py")}


def _imports(name, path, modules):
    """Every module of the package ``name`` imports (at module level or in functions), and the
    third-party top-level packages."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    ours, theirs = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (ours if alias.name.startswith("proxy_pixel_pipeline") else theirs).add(
                    alias.name if alias.name.startswith("proxy_pixel_pipeline")
                    else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("proxy_pixel_pipeline"):
                theirs.add(target.split(".")[0])
                continue
            for alias in node.names:           # "from . import registry" imports a module
                sub = f"{target}.{alias.name}"
                ours.add(sub if sub in modules else target)
    return {m for m in ours if m in modules and m != name}, theirs


def _rank(name):
    best = max((prefix for prefix, _ in RANKS
                if name == prefix or name.startswith(prefix + ".")), key=len)
    return dict(RANKS)[best]


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_no_import_cycles(graph):
    edges = {name: ours for name, (ours, _) in graph.items()}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in edges[node]:
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_nothing_imports_upwards(graph):
    upward = [f"{name} (layer {_rank(name)}) imports {dep} (layer {_rank(dep)})"
              for name, (ours, _) in graph.items() for dep in sorted(ours)
              if _rank(dep) > _rank(name)]
    assert not upward, "\n".join(upward)


def test_science_is_mpi_free_and_io_knows_no_science(graph):
    for name, (ours, theirs) in graph.items():
        if name.startswith("proxy_pixel_pipeline.science"):
            assert "mpi4py" not in theirs, name
            assert not any(m.startswith("proxy_pixel_pipeline.runtime") for m in ours), (name, ours)
            assert not any(m.startswith("proxy_pixel_pipeline.io.fitsio") for m in ours), name
        if name.startswith("proxy_pixel_pipeline.io"):
            assert not any(m.startswith("proxy_pixel_pipeline.science") for m in ours), (name, ours)
    mpi_users = sorted(n for n, (_, theirs) in graph.items() if "mpi4py" in theirs)
    assert all(n.startswith("proxy_pixel_pipeline.runtime.") for n in mpi_users), mpi_users


def test_modules_are_short_and_the_top_level_is_small():
    long = {str(p.relative_to(ROOT)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600}
    assert not long, long
    top = sorted(p.name for p in PKG.glob("*.py"))
    assert len(top) <= 6, top


def test_no_module_state_is_filled_at_run_time():
    """No ``global`` statement, and no assignment to another module's attribute."""
    offenders = []
    for path in PKG.rglob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {alias.asname or alias.name for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.Global):
                offenders.append(f"{path.name}:{node.lineno} global {', '.join(node.names)}")
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                            and t.value.id in imported):
                        offenders.append(f"{path.name}:{node.lineno} sets {t.value.id}.{t.attr}")
    assert not offenders, offenders
