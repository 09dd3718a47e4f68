"""Read one landed extract file into rows of text, as its contract describes it.

A file is read line by line: none of the sources writes values that span lines, so a broken line (wrong number of
fields, an unbalanced quote, a row cut short by truncation) costs that line alone, which is quarantined with its
raw text, and never swallows the lines after it. A file that cannot be read at all (not text in its encoding,
no header, a header the contract does not describe) is rejected whole with a `FileRejected` naming the reason.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from data_contracts.loader import Contract


class FileRejected(Exception):
    """The file cannot be read at all; `reason` says why, `line` where (1-based), when known."""

    def __init__(self, reason: str, line: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass
class BadLine:
    line: int
    raw: str
    reason: str


@dataclass
class ParsedFile:
    path: Path
    sha256: str
    size: int
    columns: dict[str, list[str]]
    lines: list[int]
    raw: list[str]
    bad: list[BadLine] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        """Data lines read (every line after the header): parsed rows plus bad lines."""
        return len(self.lines) + len(self.bad)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _split(line: str, delimiter: str) -> list[str] | None:
    """Fields of one line, or None when the line is not well-formed CSV on its own."""
    if '"' not in line:
        return line.split(delimiter)
    try:
        rows = list(csv.reader([line], delimiter=delimiter, strict=True))
    except csv.Error:
        return None
    if len(rows) != 1:
        return None
    return rows[0]


def decode(data: bytes, encoding: str) -> str:
    if b"\x00" in data[:65536]:
        raise FileRejected("not a text file: it contains NUL bytes (binary content)")
    try:
        text = data.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise FileRejected(f"not valid {encoding} text: byte 0x{data[e.start]:02x} cannot be decoded", line) from None
    return text


def parse_bytes(path: Path, data: bytes, contract: Contract) -> ParsedFile:
    """Parse file content; raise FileRejected when the file as a whole is unreadable."""
    if not data.strip():
        raise FileRejected("empty file: no header line")
    text = decode(data, contract.encoding)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    delim = contract.delimiter
    header = _split(lines[0], delim)
    if header is None:
        raise FileRejected("header line is not valid CSV", 1)
    header = [h.strip() for h in header]
    expected = contract.header
    missing = [h for h in expected if h not in header]
    unexpected = [h for h in header if h not in expected]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if missing or unexpected or dupes:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if unexpected:
            parts.append(f"unexpected columns {unexpected}")
        if dupes:
            parts.append(f"repeated columns {dupes}")
        raise FileRejected(f"header does not match contract {contract.ref}: " + "; ".join(parts), 1)
    # Columns are matched by name, so a file with the same columns in another order still reads.
    positions = [header.index(h) for h in expected]
    width = len(header)
    out_cols: list[list[str]] = [[] for _ in expected]
    line_numbers: list[int] = []
    raws: list[str] = []
    bad: list[BadLine] = []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            bad.append(BadLine(i, line, "blank line"))
            continue
        fields = _split(line, delim)
        if fields is None:
            bad.append(BadLine(i, line, "malformed CSV: unbalanced quote"))
            continue
        if len(fields) != width:
            bad.append(BadLine(i, line, f"expected {width} fields, found {len(fields)}"))
            continue
        for col, pos in zip(out_cols, positions, strict=True):
            col.append(fields[pos])
        line_numbers.append(i)
        raws.append(line)
    return ParsedFile(
        path=path,
        sha256=sha256_of(data),
        size=len(data),
        columns={c.name: vals for c, vals in zip(contract.columns, out_cols, strict=True)},
        lines=line_numbers,
        raw=raws,
        bad=bad,
    )


def parse_file(path: Path, contract: Contract) -> ParsedFile:
    return parse_bytes(path, path.read_bytes(), contract)
