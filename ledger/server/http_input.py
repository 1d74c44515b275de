"""Reading what a client sent, defensively: capped bodies, JSON, Basic credentials, integers.

Every problem becomes an `InvalidRequest` with its documented reply, so a handler never
sees a half-read body, a body of the wrong type, or bytes that are not UTF-8.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import zlib
from itertools import accumulate
from typing import TypeVar

import msgspec
from starlette.requests import Request

from ledger.errors import InvalidRequest
from ledger.server.replies import HttpError

JSON = "application/json"
TEXT = "text/plain"  # how navigator.sendBeacon and Segment's analytics.js label the JSON they post
FORM = "application/x-www-form-urlencoded"
MAX_QUERY_INT = 2**63 - 1  # the database's integer range
#: Seconds a client gets to send a whole request body: a slow sender must not hold a connection forever.
BODY_TIMEOUT = 30.0
MAX_JSON_DEPTH = 100  # arrays and objects in a request body; an event's values may nest 40 deep

_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}

T = TypeVar("T")


async def read_body(request: Request, media_types: str | tuple[str, ...], limit: int,
                    timeout: float = BODY_TIMEOUT) -> bytes:
    """The request body as UTF-8 bytes of at most `limit` bytes (after gzip), or a refusal.

    The Content-Type (parameters such as `charset` aside) must be one of `media_types`.

    Refuses on the declared Content-Length before reading, and stops reading as soon as the
    body passes the limit, so an oversized upload never sits in memory; a body not complete
    within `timeout` seconds is a 408 (SDKs send it again).
    """
    accepted = (media_types,) if isinstance(media_types, str) else media_types
    declared = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if declared not in accepted:
        raise HttpError.unsupported_media_type(" or ".join(accepted))
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise HttpError.unsupported_encoding()
    length = request.headers.get("content-length", "").strip()
    if length and not (length.isascii() and length.isdigit()):
        raise InvalidRequest.bad_body("Invalid Content-Length")
    if length and (len(length) > 18 or int(length) > limit):  # 19 digits and more exceed every limit
        raise InvalidRequest.payload_too_large()
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise InvalidRequest.payload_too_large()
    except TimeoutError:
        raise HttpError.request_timeout(timeout) from None
    data = _gunzip(bytes(body), limit) if encoding == "gzip" else bytes(body)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest.bad_body() from None
    return data


def _digits(text: str, most: int) -> bool:
    """Plain ASCII digits, few enough that int() is cheap and cannot refuse."""
    return text.isascii() and text.isdigit() and len(text) <= most


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress at most `limit` bytes: a small gzip bomb must not become a large body."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        plain = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise InvalidRequest.bad_body() from None
    if len(plain) > limit or inflater.unconsumed_tail:
        raise InvalidRequest.payload_too_large()
    if not inflater.eof:
        raise InvalidRequest.bad_body()
    return plain


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """The (user name, password) of an HTTP Basic Authorization header, or None."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    return user, password


def query_int(request: Request, name: str, *, default: int, low: int = 0, high: int = MAX_QUERY_INT) -> int:
    """An integer query parameter, `default` when absent."""
    text = request.query_params.get(name)
    return default if text is None else to_int(text, name, low=low, high=high)


def to_int(text: str, name: str, *, low: int = 0, high: int = MAX_QUERY_INT) -> int:
    """A decimal integer within [low, high] (the database's range by default), or a 400."""
    if not _digits(text, 19) or not low <= int(text) <= high:
        raise HttpError.bad_parameter(f"{name} must be an integer from {low} to {high}")
    return int(text)


def decode_json(body: bytes, kind: type[T]) -> T:
    """The body as `kind`; malformed, too deeply nested or wrongly shaped JSON is a 400, never a 500."""
    if _deeper_than(body, MAX_JSON_DEPTH):
        raise InvalidRequest.bad_body()
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as error:
        raise InvalidRequest.bad_body(f"Invalid request body: {error}") from None
    except (msgspec.DecodeError, RecursionError):
        raise InvalidRequest.bad_body() from None


def _deeper_than(body: bytes, limit: int) -> bool:
    """Whether JSON nests arrays and objects more than `limit` deep; brackets inside strings do not count.

    The ledger's own limit, checked before decoding: the decoder's is the interpreter's recursion
    limit, which differs between Python versions (3.13 decodes bodies that 3.11 cannot).
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")  # in valid JSON, escapes occur only in strings
    outside_strings = b"".join(unescaped.split(b'"')[::2])
    brackets = outside_strings.translate(None, _NOT_BRACKETS)
    return any(depth > limit for depth in accumulate(map(_STEP.__getitem__, brackets)))
