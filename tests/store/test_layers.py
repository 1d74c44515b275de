"""Where the database is known: the store never imports the read side, and only `ledger.store.backends`
asks which database it runs on (a new backend is one module there, not a branch in ten files)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ROOT / "ledger" / "store" / "backends"


def _modules(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return names | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def test_the_store_never_imports_the_read_side() -> None:
    leaks = {str(path.relative_to(ROOT)): sorted(name for name in _imported(path) if name.split(".")[0] == "projections")
             for path in _modules("ledger/store")}
    assert {path: names for path, names in leaks.items() if names} == {}


def test_only_the_backends_ask_which_database_they_run_on() -> None:
    asking = []
    for path in _modules("ledger", "projections"):
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
