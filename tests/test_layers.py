"""The layering of docs/architecture.md, checked on the source (every import, function-level ones too).

From the top: the demo -> the CLI -> search -> protocols -> train -> views, evaluate,
models -> data, config, objectives -> utilities (progress, tracking, seeding, errors). A
package may import its own modules and packages *below* it, never one above it, not even
inside a function. Only the application code (CLI, demo, search, protocols) and the
generator registry next to the views (``infomin.views.hub``) talk to MLflow. A
function-level import of an infomin module outside the CLI (where every command imports
lazily so ``--help`` starts fast) names its reason in a comment on the same line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import REPO

PACKAGE = REPO / "infomin"
#: top to bottom; a package may import only packages listed after it
ORDER = ("demo", "cli", "ui", "search", "protocols", "train", "views", "evaluate", "models", "data",
         "recipes", "config", "objectives", "progress", "tracking", "stores", "retry", "seeding", "plainyaml", "errors")
MLFLOW_USERS = ("cli", "demo", "search", "protocols", "tracking", "views.hub")


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of ``path``."""
    tree = ast.parse(path.read_text())
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside |= {id(n) for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in inside) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "infomin":   # from infomin import tracking, data as D
                out += [(f"infomin.{a.name}", node.lineno, id(node) in inside) for a in node.names]
            else:
                out.append((node.module, node.lineno, id(node) in inside))
    return out


def _package(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "infomin" or len(parts) < 2:
        return None
    return parts[1]


FILES = sorted(PACKAGE.rglob("*.py"))


def test_every_package_has_a_place_in_the_order():
    tops = {_package(_module(f)) for f in FILES} - {None, "__main__"}
    assert tops <= set(ORDER), sorted(tops - set(ORDER))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_imports_a_higher_layer(path):
    me = _package(_module(path))
    if me is None:
        return
    bad = []
    for target, line, _ in _imports(path):
        other = _package(target)
        if other is None or other == me:
            continue
        if ORDER.index(other) < ORDER.index(me):
            bad.append(f"{path.name}:{line} imports {target} ({other} is above {me})")
    assert not bad, bad


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_only_the_application_code_talks_to_mlflow(path):
    module = _module(path)
    allowed = any(module == f"infomin.{u}" or module.startswith(f"infomin.{u}.") for u in MLFLOW_USERS)
    talks = [(t, ln) for t, ln, _ in _imports(path) if t.split(".")[0] == "mlflow" or t == "infomin.tracking"]
    assert allowed or not talks, f"{module} imports {talks}"


@pytest.mark.parametrize("path", [f for f in FILES if _package(_module(f)) not in ("cli", "demo")],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_function_level_imports_of_infomin_say_why(path):
    lines = path.read_text().splitlines()
    silent = [f"{path.name}:{ln}" for t, ln, inside in _imports(path)
              if inside and t.startswith("infomin") and "#" not in lines[ln - 1]]
    assert not silent, f"function-level imports without a reason: {silent}"


def test_the_checker_catches_an_upward_import(tmp_path):
    """The test above can fail: a train module importing the protocols is reported."""
    fake = PACKAGE / "train" / "_layer_probe.py"
    try:
        fake.write_text("def f():\n    from infomin.protocols import run_candidate\n")
        with pytest.raises(AssertionError, match="protocols is above train"):
            test_no_module_imports_a_higher_layer(fake)
        with pytest.raises(AssertionError, match="without a reason"):
            test_function_level_imports_of_infomin_say_why(fake)
    finally:
        fake.unlink()
