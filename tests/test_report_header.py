"""`pytest` says under its header which backends the run covers, with and without PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def header_lines(postgres_url: str) -> list[str]:
    env = {**os.environ, "LEDGER_TEST_POSTGRES_URL": postgres_url}
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-p", "no:cacheprovider",
                          "tests/domain/test_keys.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return [line for line in run.stdout.splitlines() if line.startswith("ledger backends:")]


@pytest.mark.parametrize(("postgres_url", "covered"), [
    ("", "SQLite only"),
    ("postgresql://postgres@127.0.0.1:5432/test", "SQLite and PostgreSQL"),
])
def test_the_session_header_names_the_backends_in_one_line(postgres_url: str, covered: str) -> None:
    lines = header_lines(postgres_url)
    assert len(lines) == 1 and covered in lines[0], lines
