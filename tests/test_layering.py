"""Imports point one way (docs/architecture.md): the read side never imports the ledger, the store never
imports the read side, the HTTP adapter never imports the command line; only `ledger.store.backends` asks
which database it runs on (a new backend is one module there, not a branch in ten files).
Read from the source, so a lazy import inside a function counts too.
Sizes stay bounded the same way: modules and classes are measured from the source (issue #27)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ROOT / "ledger" / "store" / "backends"


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
    ("ledger/store", "projections"),
    ("ledger/server", "ledger.cli"),
])
def test_imports_point_one_way(folder: str, forbidden: str) -> None:
    leaks = {path: sorted(name for name in names if name == forbidden or name.startswith(forbidden + "."))
             for path, names in imported(folder).items()}
    assert {path: names for path, names in leaks.items() if names} == {}


def test_only_the_backends_ask_which_database_they_run_on() -> None:
    asking = []
    for path in sorted([*(ROOT / "ledger").rglob("*.py"), *(ROOT / "projections").rglob("*.py")]):
        if BACKENDS in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            called = node.func.attr if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else None
            attribute = node.attr if isinstance(node, ast.Attribute) else None
            # `dialect.name`, `is_postgres`, `get_backend_name()`: each a question about the database.
            if called == "get_backend_name" or attribute in ("is_postgres", "postgres") or (
                    attribute == "name" and isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "dialect"):
                asking.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert asking == []


#: Classes allowed over `MAX_METHODS`: the public facade has one method per operation (issue #27).
SIZE_EXCEPTIONS = {"ledger/ledger.py:IdentityLedger"}
MAX_METHODS = 15
MAX_LINES = 400


def test_modules_and_classes_stay_small() -> None:
    """No module over 400 lines, no class but the facade over 15 methods (private ones and properties count)."""
    too_long: dict[str, int] = {}
    too_many: dict[str, int] = {}
    for folder in ("ledger", "projections"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            source = path.read_text()
            name = str(path.relative_to(ROOT))
            if len(source.splitlines()) > MAX_LINES:
                too_long[name] = len(source.splitlines())
            for node in ast.walk(ast.parse(source, name)):
                if isinstance(node, ast.ClassDef):
                    methods = sum(isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) for item in node.body)
                    if methods > MAX_METHODS and f"{name}:{node.name}" not in SIZE_EXCEPTIONS:
                        too_many[f"{name}:{node.name}"] = methods
    assert (too_long, too_many) == ({}, {})
