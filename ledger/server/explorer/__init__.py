"""The identity explorer: read-only HTML pages over the ledger, mounted at /ui by `ledger serve`."""

from ledger.server.explorer.routes import explorer

__all__ = ["explorer"]
