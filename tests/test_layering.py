"""The layout's arrows point one way: checked by parsing every module's imports (``ast``), not by
importing anything.

- Nothing under ``backend/training/`` imports the run manager (``backend.runs``) or the store
  (``backend.store``): the loop reports through its ``MetricsWriter`` protocol.
- Nothing under ``backend/`` imports streamlit: the dashboard calls the backend, never the reverse.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from backend.config import REPO_ROOT

BACKEND = REPO_ROOT / "backend"


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in ``path`` names (relative ones resolved),
    including ``from package import module`` as ``package.module``; also imports inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def offenders(folder: Path, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """Files under ``folder`` importing any module of ``forbidden`` (or a submodule of one)."""
    found = {}
    for path in sorted(folder.rglob("*.py")):
        bad = sorted(m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in forbidden))
        if bad:
            found[str(path.relative_to(REPO_ROOT))] = bad
    return found


def test_the_import_parser_sees_every_form():
    sample = BACKEND / "training" / "loop.py"
    assert "backend.training.writer.MetricsWriter" in imported_modules(sample)
    assert "torch" in imported_modules(sample)
    lifecycle = imported_modules(BACKEND / "runs" / "lifecycle.py")
    assert "backend.store" in lifecycle and "backend.training.loop.fit" in lifecycle  # a function-level import


def test_training_imports_neither_the_run_manager_nor_the_store():
    assert offenders(BACKEND / "training", ("backend.runs", "backend.store")) == {}


@pytest.mark.parametrize("library", ["streamlit"])
def test_nothing_in_backend_imports_the_ui(library):
    assert offenders(BACKEND, (library,)) == {}
