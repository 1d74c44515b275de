"""`ledger serve`: the HTTP adapter, Amplitude- and Segment-compatible.

`app` wires the routes and maps errors to replies, `ingest_api` and `query_api` are the
endpoints, `http_input`, `replies`, `credentials` and `segment` translate what crosses the wire.
"""

from ledger.server.app import create_app, serve
from ledger.server.credentials import ServerConfigError

__all__ = ["ServerConfigError", "create_app", "serve"]
