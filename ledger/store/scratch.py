"""Scratch copies of the ledger (an `as_of` replay, a `sqlite://` ledger): personal data that must not outlive its use.

A scratch copy holds user IDs, device IDs and properties like the ledger itself, so one left behind
by a crash (kill -9, power loss) would keep people a deletion job has forgotten. Every scratch
directory lives under one directory of this user (`LEDGER_SCRATCH_DIR`, default
`<tmp>/identity-ledger-scratch-<uid>`, mode 0700) and is named after the process that owns it
(`pid<PID>-<random>`), so `remove_stale` can tell the copies of dead processes from the copies in
use and delete only those. Opening a ledger and running a deletion job both call it.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from ledger.errors import LedgerError

#: Where scratch copies go instead of the default, e.g. a tmpfs or an encrypted volume.
SCRATCH_DIR_VARIABLE = "LEDGER_SCRATCH_DIR"
_OWNED = re.compile(r"^pid(\d+)-")


class ScratchDirUnsafe(LedgerError):
    """The scratch directory is not a private directory of this user: copies of personal data would leak."""


def scratch_root() -> Path:
    """The directory every scratch copy of this user goes under, created private (0700) if missing."""
    root = _root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not _private(root):
        raise ScratchDirUnsafe(f"{root} must be a directory of user {os.getuid()} that only it can read (mode 0700);"
                               f" remove it, or set {SCRATCH_DIR_VARIABLE} to one")
    return root


def _root() -> Path:
    configured = os.environ.get(SCRATCH_DIR_VARIABLE)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"identity-ledger-scratch-{os.getuid()}"


def _private(root: Path) -> bool:
    found = os.lstat(root)
    return stat.S_ISDIR(found.st_mode) and found.st_uid == os.getuid() and not found.st_mode & 0o077


def new_scratch_dir() -> str:
    """A new directory for one scratch copy, named after this process; the caller deletes it when done."""
    return tempfile.mkdtemp(prefix=f"pid{os.getpid()}-", dir=scratch_root())


def remove_stale() -> list[str]:
    """Delete the scratch directories whose owning process is gone; returns their paths.

    A directory whose process still runs is left alone (a process that reused a dead owner's
    PID keeps its copy until it exits in turn: never a copy in use deleted).
    """
    root = _root()
    if not root.is_dir() or not _private(root):
        return []  # never written to by this user's ledgers: nothing of theirs to remove
    removed = []
    for entry in os.scandir(root):
        owner = _OWNED.match(entry.name)
        if owner is not None and entry.is_dir(follow_symlinks=False) and not _running(int(owner.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or not a PID we can judge: leave it
    return True
