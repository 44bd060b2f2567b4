"""The shape of the code, read from its syntax trees: function length,
cyclomatic complexity, the direction of imports, how test modules share code
and whether the tier table names real tests. Nothing here runs the code or
times it.

Length is counted from the ``def`` line to the function's last line, docstring
included (decorators are not); every function counts, nested ones and
methods too. Migrations are generated-style scripts and are left out.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

from radon.complexity import cc_visit_ast
from support.source import syntax_tree
from support.tiers import MEASURED_SLOW

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "healthcode"
TESTS = ROOT / "tests"
MIGRATIONS = PACKAGE / "core" / "storage" / "migrations"

MAX_LINES = 100
LONG_LINES = 50
MAX_LONG_FUNCTIONS = 15
MAX_COMPLEXITY = 20
SHELLS = ("healthcode.cli", "healthcode.core")
"""Packages that reach plugins only through the hooks, never by import."""

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def _sources() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if not path.is_relative_to(MIGRATIONS):
            yield path


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def _function_lengths() -> dict[str, int]:
    """``path:line name`` -> lines from ``def`` to the end, for every function."""
    lengths: dict[str, int] = {}
    for path in _sources():
        for node in ast.walk(syntax_tree(path)):
            if isinstance(node, FunctionNode):
                end = node.end_lineno or node.lineno
                where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                lengths[where] = end - node.lineno + 1
    return lengths


def _report(items: dict[str, int]) -> str:
    ranked = sorted(items.items(), key=lambda item: -item[1])
    return "\n".join(f"  {n:4d}  {where}" for where, n in ranked)


def test_the_package_is_parsed() -> None:
    # Guards the other tests against passing on an empty walk.
    assert len(_function_lengths()) > 500


def test_no_function_is_over_100_lines() -> None:
    too_long = {w: n for w, n in _function_lengths().items() if n > MAX_LINES}
    assert not too_long, f"functions over {MAX_LINES} lines:\n{_report(too_long)}"


def test_at_most_15_functions_are_over_50_lines() -> None:
    long = {w: n for w, n in _function_lengths().items() if n > LONG_LINES}
    assert len(long) <= MAX_LONG_FUNCTIONS, (
        f"{len(long)} functions over {LONG_LINES} lines (at most {MAX_LONG_FUNCTIONS}):\n"
        + _report(long)
    )


def test_no_block_is_more_complex_than_20() -> None:
    # The same measure as `radon cc -s -n D healthcode`.
    complex_blocks: dict[str, int] = {}
    for path in _sources():
        for block in cc_visit_ast(syntax_tree(path)):
            if block.complexity > MAX_COMPLEXITY:
                where = f"{path.relative_to(ROOT)}:{block.lineno} {block.fullname}"
                complex_blocks[where] = block.complexity
    assert not complex_blocks, (
        f"blocks with cyclomatic complexity over {MAX_COMPLEXITY}:\n{_report(complex_blocks)}"
    )


def _imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports, anywhere in it (also inside functions
    and ``TYPE_CHECKING`` blocks), with relative imports resolved."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(syntax_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield node.lineno, module
            for alias in node.names:  # `from healthcode import plugins`
                yield node.lineno, f"{module}.{alias.name}"


def test_cli_and_core_do_not_import_plugins() -> None:
    offenders: dict[str, str] = {}  # one line per import statement
    for path in _sources():
        if not _module_name(path).startswith(SHELLS):
            continue
        for line, module in _imported_modules(path):
            if module == "healthcode.plugins" or module.startswith("healthcode.plugins."):
                offenders.setdefault(f"{path.relative_to(ROOT)}:{line}", module)
    report = "\n  ".join(f"{where} imports {module}" for where, module in offenders.items())
    assert not offenders, f"reach plugins through the hooks:\n  {report}"


def test_test_modules_share_code_only_through_support() -> None:
    # Helpers several test modules use live in tests/support/; a test module
    # never imports another test module or conftest (pytest loads conftest
    # itself, and importing it a second time makes a second copy).
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(syntax_tree(path)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top == "conftest" or top.startswith("test_") or top == "passes_support":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not offenders, "import shared test code from tests/support:\n  " + "\n  ".join(offenders)


def test_measured_slow_tests_exist() -> None:
    # A renamed or deleted test left in the table would silently leave the
    # fast tier; the table names test functions (every parameter).
    defined = {
        path.name: {
            node.name
            for node in ast.walk(syntax_tree(path))
            if isinstance(node, FunctionNode) and node.name.startswith("test_")
        }
        for path in TESTS.glob("test_*.py")
    }
    stale = sorted(
        f"{module}::{name}"
        for module, names in MEASURED_SLOW.items()
        for name in names
        if name not in defined.get(module, set())
    )
    assert stale == [], "tests/support/tiers.py names tests that do not exist"
