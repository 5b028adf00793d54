"""The layout is the architecture: every import of the package points down the layers listed in
docs/architecture.md, no two modules import each other at module level, and no module imports a
private name (``_x``) of another."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "autograd_lite"

# Lowest first. A module may import its own layer and the layers below it, never one above.
LAYERS = (
    ("errors", "backend", "reference", "roundoff", "data"),
    ("ops",),
    ("core",),
    ("transforms", "losses"),
    ("compile", "io"),
    ("nn",),
    ("optim", "train"),
    ("check", "viz"),
    ("",),              # autograd_lite itself: the public face, ag.*
    ("cli", "__main__"),
)
ENGINE = ("ops", "core", "transforms", "losses", "compile")
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
# What still breaks the rules, each to be mended where it is (an empty set is the goal).
KNOWN_UPWARD: set = set()
KNOWN_PRIVATE: set = set()


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(name, path):
    """(imported module, names, at module level?) for every import of the package in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "autograd_lite":
                names = [alias.name for alias in node.names]
                found.append((target, names, id(node) in top_level))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "autograd_lite":
                    found.append((alias.name, [], id(node) in top_level))
    return found


def layer(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def resolved(target, names, known):
    """``from .ops import elementwise`` imports the module autograd_lite.ops.elementwise."""
    return [f"{target}.{n}" if f"{target}.{n}" in known else target for n in names] or [target]


def test_every_module_belongs_to_a_layer():
    unknown = sorted({layer(m) for m in modules()} - set(RANK))
    assert unknown == [], f"add these to LAYERS and to docs/architecture.md: {unknown}"


def test_no_import_points_up_a_layer():
    known = modules()
    upward = []
    for name, path in known.items():
        for target, names, _ in imports(name, path):
            for module in resolved(target, names, known):
                if RANK[layer(module)] > RANK[layer(name)]:
                    upward.append(f"{name} imports {module}")
    assert set(upward) == KNOWN_UPWARD


def test_the_engine_never_imports_check_viz_nn_or_cli():
    known = modules()
    found = [f"{name} imports {target}" for name, path in known.items() if layer(name) in ENGINE
             for target, _, _ in imports(name, path)
             if layer(target) in ("check", "viz", "nn", "cli", "optim", "train")]
    assert found == []


def test_no_import_circle_at_module_level():
    known = modules()
    graph = {name: {m for target, names, top in imports(name, path) if top
                    for m in resolved(target, names, known) if m != name}
             for name, path in known.items()}
    # a package's __init__ importing its own submodules is how a package is made, not a circle
    def edges(name):
        return {m for m in graph.get(name, ()) if not (name.startswith(m + ".") and m in known)}
    circles, state = [], {}

    def visit(name, stack):
        state[name] = "open"
        stack.append(name)
        for other in sorted(edges(name)):
            if state.get(other) == "open":
                circles.append(" -> ".join(stack[stack.index(other):] + [other]))
            elif other not in state:
                visit(other, stack)
        stack.pop()
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert circles == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_private_name_is_imported_from_another_module(name):
    private = [f"{target}.{n}" for target, names, _ in imports(name, modules()[name])
               for n in names if n.startswith("_") and not n.startswith("__")]
    assert (private == []) != (name in KNOWN_PRIVATE)
