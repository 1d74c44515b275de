"""Bulk work without the cycle collector: a request or a replay page allocates many containers at once.

Each batch of ~700 new containers starts a collection that walks the young objects, and
every few of those walk older ones too: while a page of 20,000 decoded facts (or a request's
aggregates and rows) is being built, that work grows with what the batch holds, not with any
garbage (the batch makes no cycles that outlive it). Collection is paused for the batch and
resumed after it; a process that disabled it itself keeps it disabled.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
