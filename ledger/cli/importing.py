"""Reading events from files: JSON Lines, gzipped JSON Lines and Amplitude export zips.

Every row comes with where it was found ("file:line", or "archive:member:line"), so a bad
line can be reported precisely and skipped without losing the good rest. The kind of
file is read from its first bytes, not trusted from its name.
"""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

import msgspec

from ledger.cli.amplitude_export import event_from_export_row, is_export_row

STDIN = "-"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_GZIP_MAGIC = b"\x1f\x8b"
_decoder = msgspec.json.Decoder()
_CORRUPT = (OSError, EOFError, zlib.error, zipfile.BadZipFile)


@dataclass(frozen=True)
class Row:
    """One line read: an event dict, or the reason it could not be read."""

    where: str
    event: dict[str, Any] | None = None
    problem: str | None = None


def unreadable(paths: list[str]) -> str | None:
    """Why the first path that cannot be opened cannot be, or None; checked before anything is stored."""
    for path in paths:
        if path == STDIN:
            continue
        target = Path(path)
        if not target.exists():
            return f"no such file: {path}"
        if not target.is_file():
            return f"not a file: {path}"
    return None


def read_rows(paths: list[str], stdin: IO[bytes]) -> Iterator[Row]:
    """Every non-blank line of every source, in order."""
    for path in paths:
        if path == STDIN:
            yield from _rows_of("<stdin>", stdin)
        else:
            with open(path, "rb") as stream:
                yield from _rows_of(path, stream)


def _rows_of(name: str, stream: IO[bytes]) -> Iterator[Row]:
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)  # type: ignore[arg-type]
    magic = buffered.peek(4)[:4]
    if magic.startswith(_ZIP_MAGIC):
        yield from _archive_rows(name, buffered)
    elif magic.startswith(_GZIP_MAGIC):
        yield from _lines(name, gzip.GzipFile(fileobj=buffered), "corrupt gzip")
    elif name.endswith(".gz"):
        yield Row(name, problem="corrupt gzip: not a gzip file")
    elif name.endswith(".zip"):
        yield Row(name, problem="corrupt zip: not a zip archive")
    else:
        yield from _lines(name, buffered, "unreadable")


def _archive_rows(name: str, stream: IO[bytes]) -> Iterator[Row]:
    """An Amplitude Export API zip: one gzipped JSON Lines file per hour, read in name order."""
    seekable = stream if stream.seekable() else io.BytesIO(stream.read())
    try:
        archive = zipfile.ZipFile(seekable)
    except _CORRUPT as error:
        yield Row(name, problem=f"corrupt zip: {error}")
        return
    with archive:
        for member in sorted(info.filename for info in archive.infolist() if not info.is_dir()):
            where = f"{name}:{member}"
            try:
                raw = archive.open(member)
            except _CORRUPT as error:
                yield Row(where, problem=f"corrupt zip member: {error}")
                continue
            with raw:
                if member.endswith(".gz"):
                    yield from _lines(where, gzip.GzipFile(fileobj=raw), "corrupt gzip")
                else:
                    yield from _lines(where, raw, "corrupt zip member")


def _lines(where: str, stream: IO[bytes], corrupt: str) -> Iterator[Row]:
    number = 0
    try:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                yield _row(f"{where}:{number}", line)
    except _CORRUPT as error:
        yield Row(f"{where}:{number + 1}", problem=f"{corrupt}: {error}")


def _row(where: str, line: bytes) -> Row:
    try:
        value = _decoder.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        return Row(where, problem=f"not JSON: {error}")
    if not isinstance(value, dict):
        return Row(where, problem="not a JSON object")
    if is_export_row(value):
        try:
            value = event_from_export_row(value)
        except ValueError as error:
            return Row(where, problem=str(error))
    return Row(where, event=value)
