"""Layers import downward only: no module of the engine or the model folders is part of an import cycle,
counting imports inside functions too (a function-level import must not hide one)."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"modelzoo": ROOT / "modelzoo", "modelzoo_models": ROOT / "models"}


def modules():
    """{dotted name: path} of every module in the engine and the model folders."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported(node, current, known):
    """The known modules an import statement names: `from a import b` names a.b when that is a module, else a."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    base = node.module or ""
    if node.level:
        package = current.split(".")[: -node.level] if not known[current].name == "__init__.py" else \
            current.split(".")[: len(current.split(".")) - node.level + 1]
        base = ".".join(package + ([base] if base else []))
    targets = {f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names}
    return [target for target in targets if target in known]


def graph():
    known = modules()
    edges = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        edges[name] = {target for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                       for target in imported(node, name, known) if target != name}
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_module_is_part_of_an_import_cycle():
    assert cycles(graph()) == []


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    edges = graph()
    assert "modelzoo.compile" in edges["modelzoo.api"]  # the graph sees real imports


def test_the_api_imports_on_its_own():
    subprocess.run([sys.executable, "-c", "import modelzoo.api"], check=True, cwd=ROOT)
