"""Refuses Python older than 3.11 in one clear line, before pip goes looking for dependencies.

Everything else about the package is in pyproject.toml. Without this, an old pip on Python 3.10
reports that no version of eventsourcing matches instead of saying that Python is too old.
"""

import sys

if sys.version_info < (3, 11):
    sys.exit(f"identity-ledger needs Python 3.11 or newer; this is Python {sys.version.split()[0]}")

from setuptools import setup

setup()
