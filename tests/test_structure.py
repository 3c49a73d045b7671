"""The house rules, checked: imports flow one way (no cycle, function-level imports included), the layer
contracts of pyproject.toml hold, and the tree is clean under ruff's rules and formatter."""

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("ghostnp", "weights_converter")


def find_cycle(imports):
    """One import cycle of ``imports`` ({module: set of modules it imports}) as a list, or None."""
    state = dict.fromkeys(imports, "new")
    path = []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for imported in sorted(imports[module]):
            if state[imported] == "open":
                return path[path.index(imported) :] + [imported]
            if state[imported] == "new" and (cycle := visit(imported)):
                return cycle
        state[module] = "done"
        path.pop()
        return None

    for module in sorted(imports):
        if state[module] == "new" and (cycle := visit(module)):
            return cycle
    return None


def test_find_cycle_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_among_the_projects_modules():
    """Every module, package ``__init__`` included, and imports inside functions too (grimp reads them)."""
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    imports = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    assert {"ghostnp.network.model", "weights_converter.pickle_machine"} <= set(imports)
    assert find_cycle(imports) is None, " -> ".join(find_cycle(imports))


def run(*command):
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def tool(name):
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail(f"{name} is not installed next to {sys.executable}: pip install -e '.[test]'")
    return path


def test_import_contracts_hold():
    result = run(tool("lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_ruff_check_is_clean():
    result = run(tool("ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = run(tool("ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr
