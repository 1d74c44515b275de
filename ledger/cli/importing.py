"""Reading events from files: JSON Lines, gzipped JSON Lines and Amplitude export zips.

Every row comes with where it was found ("file:line", or "archive:member:line"), so a bad
line can be reported precisely and skipped without losing the good rest. The kind of
file is read from its first bytes, not trusted from its name. A UTF-8 byte-order mark is
skipped; a UTF-16 file is refused in one line that says so; a file that is one JSON array of
events (what many tools write) is read as its elements ("file:[index]"): read whole, so large
inputs are better as JSON Lines. Blank lines are rows too (counted as read, nothing to send).
"""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import msgspec

from ledger.cli.amplitude_export import event_from_export_row, is_export_row

STDIN = "-"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_GZIP_MAGIC = b"\x1f\x8b"
_decoder = msgspec.json.Decoder()
_array_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_CORRUPT = (OSError, EOFError, zlib.error, zipfile.BadZipFile)
_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True)
class Row:
    """One line read: an event dict, the reason it could not be read, or neither (a blank line:
    counted among the lines read, nothing to send)."""

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


class Reading:
    """How far reading its files has got, in bytes of the files; `total` is None when stdin is one."""

    def __init__(self, paths: list[str]) -> None:
        self.total = None if STDIN in paths else sum(Path(path).stat().st_size for path in paths)
        self._finished = 0
        self._open: IO[bytes] | None = None

    @property
    def done(self) -> int:
        current = self._open
        return self._finished + (current.tell() if current is not None and not current.closed else 0)


def read_rows(paths: list[str], stdin: IO[bytes], reading: Reading | None = None) -> Iterator[Row]:
    """Every line of every source, in order; `reading` follows the bytes read."""
    for path in paths:
        if path == STDIN:
            yield from _rows_of("<stdin>", stdin)
            continue
        with open(path, "rb") as stream:
            if reading is not None:
                reading._open = stream
            yield from _rows_of(path, stream)
        if reading is not None:
            reading._open = None
            reading._finished += Path(path).stat().st_size


def _rows_of(name: str, stream: IO[bytes]) -> Iterator[Row]:
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)  # type: ignore[type-var]
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


def _lines(where: str, stream: Iterable[bytes], corrupt: str) -> Iterator[Row]:
    number = 0
    lines = iter(stream)
    try:
        for number, line in enumerate(lines, start=1):
            if number == 1 and line.startswith(_BOM):
                line = line[len(_BOM):]
            if number == 1 and (encoding := _utf16(line)):
                yield Row(where, problem=f"the file is {encoding}: the ledger reads UTF-8 only "
                                         "(convert it first, e.g. iconv -f UTF-16 -t UTF-8)")
                return
            if number == 1 and line.lstrip().startswith(b"["):
                yield from _array_or_lines(where, line + b"".join(lines))
                return
            yield _row(f"{where}:{number}", line) if line.strip() else Row(f"{where}:{number}")
    except _CORRUPT as error:
        yield Row(f"{where}:{number + 1}", problem=f"{corrupt}: {error}")


def _utf16(first_line: bytes) -> str | None:
    """Which UTF-16 a source's first line is in, or None. JSON starts with an ASCII character, which
    UTF-16 writes beside a NUL byte; left alone it would read as `not JSON` on every line."""
    if first_line.startswith(_UTF16_BOMS):
        return "UTF-16 (it starts with a UTF-16 byte-order mark)"
    if first_line[:1] == b"\x00" or first_line[1:2] == b"\x00":
        return "UTF-16 or another encoding with NUL bytes, not UTF-8"
    return None


def _array_or_lines(where: str, text: bytes) -> Iterator[Row]:
    """A source whose first line opens a JSON array: its elements if it is one array, else its lines."""
    try:
        elements = _array_decoder.decode(text)
    except msgspec.DecodeError:
        for number, line in enumerate(text.splitlines(), start=1):
            yield _row(f"{where}:{number}", line) if line.strip() else Row(f"{where}:{number}")
        return
    for index, element in enumerate(elements):
        yield _row(f"{where}:[{index}]", element)


def _row(where: str, line: bytes | msgspec.Raw) -> Row:
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
