"""The machine and software a set of figures was measured on: figures mean nothing without it."""

from __future__ import annotations

import hashlib
import os
import platform
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("eventsourcing", "msgspec", "SQLAlchemy", "psycopg", "starlette", "uvicorn")
REPO = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def code_fingerprint() -> str:
    """The commit plus a digest of uncommitted changes: tells whether the code changed during a run."""
    commit, diff = _git("rev-parse", "--short", "HEAD"), _git("diff", "HEAD")
    return f"{commit}+{hashlib.sha1(diff.encode()).hexdigest()[:8]}" if diff else commit


def describe() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
        "packages": {package: _version(package) for package in PACKAGES},
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "code": code_fingerprint(),
    }
