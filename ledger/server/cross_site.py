"""Cross-site request forgery: a page on another site must not make an operator's browser change state here.

An operator signed in to the explorer has HTTP Basic credentials cached by the browser, and a
browser sends cached credentials along with a form that any web page can auto-submit: without
this guard such a page queued irreversible deletions. Browsers say where a request comes from
(`Origin` on every cross-origin POST, `Sec-Fetch-Site` on every request of a current browser),
so every state-changing request (POST, PUT, PATCH, DELETE, and a GET of `/usermap`) is refused with a 403, before any
route reads it, when a browser marks it as coming from elsewhere:

- `Sec-Fetch-Site: cross-site` or `same-site` (another site, or another host of the same site);
  when a browser sends `Sec-Fetch-Site` (every current one does) it decides: `same-origin` and
  `none` (typed by the user) pass, even with `Origin: null`, which chromium sends for the forms of
  a page served with `Referrer-Policy: no-referrer`, as the explorer's are;
- without it (older browsers): `Origin: null` (sandboxed frames, some redirects: a page that
  hides where it is), or an `Origin` whose host and port are not the request's `Host`.

An origin the operator trusts (`--trusted-origin`, e.g. an admin console on its own host) is
let through. Servers, curl and the SDKs outside browsers send neither header and are not
affected. The upload paths are left out: browser SDKs post events to them from the shop's
pages by design (`ledger.server.cors`), with an API key that ships inside those pages anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from ledger.errors import CrossSiteRequest
from ledger.server.cors import ANY_ORIGIN, checked_origins
from ledger.server.credentials import ServerConfigError
from ledger.server.replies import refusal

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Paths whose GET changes state too: Amplitude's User Mapping API takes its mappings by GET as well.
CHANGING_GETS = frozenset({"/usermap"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def checked_trusted_origins(origins: Iterable[str] | None) -> frozenset[str]:
    """The origins an operator trusts, as `scheme://host[:port]`; `*` would disable the guard, so it is refused."""
    found = frozenset(origin.strip() for origin in origins or () if origin.strip())
    if ANY_ORIGIN in found:
        raise ServerConfigError("--trusted-origin cannot be '*': name each origin, e.g. https://admin.example.com")
    for origin in found:
        checked_origins([origin])
    return frozenset(_spelled_out(origin) for origin in found)


class CrossSiteGuard:
    """ASGI middleware refusing state-changing requests a browser marks as cross-site (outside `open_paths`)."""

    def __init__(self, app: ASGIApp, open_paths: Iterable[str], trusted: Iterable[str] | None = None) -> None:
        self.app = app
        self.open_paths = frozenset(open_paths)
        self.trusted = checked_trusted_origins(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _changes_state(scope["method"], scope["path"]) and scope["path"] not in self.open_paths:
            refused = self._refusal(Headers(scope=scope))
            if refused is not None:
                await refusal(refused)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, headers: Headers) -> CrossSiteRequest | None:
        """Why the request is cross-site, or None when no browser says it is."""
        origin = headers.get("origin")
        if origin is not None and _spelled_out(origin) in self.trusted:
            return None
        site = headers.get("sec-fetch-site", "").strip().lower()
        if site in ("cross-site", "same-site"):
            return CrossSiteRequest.because(f"Sec-Fetch-Site is {site}")
        if site in ("same-origin", "none") or origin is None:  # a page of ours (whose Origin may be null), or typed
            return None
        if origin.strip().lower() == "null":
            return CrossSiteRequest.because("Origin is null")
        if not _is_own(origin, headers.get("host", "")):
            return CrossSiteRequest.because(f"Origin {origin} is not this server's")
        return None


def _changes_state(method: str, path: str) -> bool:
    return method in STATE_CHANGING or (method in ("GET", "HEAD") and path in CHANGING_GETS)


def _is_own(origin: str, host: str) -> bool:
    """Whether `origin` names the host and port the request was sent to (its `Host`).

    Compared by host and port only: TLS may end at a proxy in front, so the server's own
    scheme says nothing about what the browser used; the port defaults as the origin's scheme's.
    """
    site = _site(origin)
    ours = None if site is None or not host.strip() else _site(f"{site[0]}://{host.strip()}")
    return site is not None and ours is not None and ours[1] == site[1]


def _spelled_out(origin: str) -> str:
    """`scheme://host:port` with the scheme's default port written out; '' for what is not an origin."""
    site = _site(origin)
    return "" if site is None else "://".join(site)


def _site(url: str) -> tuple[str, str] | None:
    """(scheme, `host:port`) of an http(s) URL, the port defaulting as its scheme's does; None for anything else."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, f"{parts.hostname}:{port or _DEFAULT_PORTS[scheme]}"
