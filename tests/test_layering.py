"""Imports point one way (docs/architecture.md): the read side never imports the ledger, the HTTP
adapter never imports the command line. Read from the source, so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported(folder: str) -> dict[str, set[str]]:
    """Every module each file under `folder` imports (absolute names)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(("folder", "forbidden"), [
    ("projections", "ledger"),
    ("ledger/server", "ledger.cli"),
])
def test_imports_point_one_way(folder: str, forbidden: str) -> None:
    leaks = {path: sorted(name for name in names if name == forbidden or name.startswith(forbidden + "."))
             for path, names in imported(folder).items()}
    assert {path: names for path, names in leaks.items() if names} == {}
