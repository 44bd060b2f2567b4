"""The project's source as syntax trees, parsed once per test session, for
the meta-tests (hooks, code shape, test layout)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path


@functools.cache
def source_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@functools.cache
def syntax_tree(path: Path) -> ast.Module:
    return ast.parse(source_text(path), filename=str(path))
