"""Read one landed extract file into columns of text, as its contract describes it.

None of the sources writes values that span lines, so a broken line (wrong number of fields, an unbalanced quote, a
row cut short by truncation) costs that line alone, which is quarantined with its raw text, and never swallows the
lines after it. A file that cannot be read at all (not text in its encoding, no header, a header the contract does
not describe) is rejected whole with a `FileRejected` naming the reason.

The file is read as one buffer. Plain lines (no quote character, exactly the expected number of delimiters: almost
all of them) are parsed together by Arrow's CSV reader with quoting off, so no quote can run on into the next line;
the few others with Python's strict csv module, which decides whether they are rows or broken, each as if alone.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from crimelake.ingest.lines import Lines, gather_lines, plain_lines, split_lines
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
    """The rows of one file in file order: `columns` holds each contract column's text, `lines` each row's 1-based
    line number; `bad` the lines that are not rows. Raw text is kept once, as the file's buffer."""

    path: Path
    sha256: str
    size: int
    columns: dict[str, pa.Array]
    lines: np.ndarray
    text: Lines
    bad: list[BadLine] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        """Data lines read (every line after the header): parsed rows plus bad lines."""
        return len(self.lines) + len(self.bad)

    def raw_text(self, rows: np.ndarray) -> pa.Array:
        """The raw text of the rows at positions `rows` (not line numbers), as it stood in the file."""
        return self.text.texts(self.lines[np.asarray(rows, dtype=np.int64)] - 1)


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


def _split_each(lines: list[str], delimiter: str) -> list[list[str] | None]:
    """`_split` of every line, in order. The quoted lines go through one csv reader together, which reads each
    exactly as it would alone for as long as it takes one line per row: a quote left open makes it join lines,
    and a malformed line stops it; those lines are then read alone and a new reader takes the lines after them."""
    out: list[list[str] | None] = [None] * len(lines)
    quoted: list[int] = []
    for k, line in enumerate(lines):
        if '"' not in line:
            out[k] = line.split(delimiter)
        elif "\r" in line:  # the csv module ends a row at a carriage return: such a line is read alone
            out[k] = _split(line, delimiter)
        else:
            quoted.append(k)
    start = 0
    while start < len(quoted):
        reader = csv.reader((lines[k] for k in quoted[start:]), delimiter=delimiter, strict=True)
        done = start
        try:
            for row in reader:
                if reader.line_num != done - start + 1:
                    break
                out[quoted[done]] = row
                done += 1
        except csv.Error:
            pass
        stop = max(start + reader.line_num, done + 1) if done < len(quoted) else done
        for k in quoted[done:stop]:
            out[k] = _split(lines[k], delimiter)
        start = stop
    return out


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8")


def decode(data: bytes, encoding: str) -> str:
    if b"\x00" in data[:65536]:
        raise FileRejected("not a text file: it contains NUL bytes (binary content)")
    try:
        text = data.decode("utf-8-sig" if _is_utf8(encoding) else encoding)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise FileRejected(f"not valid {encoding} text: byte 0x{data[e.start]:02x} cannot be decoded", line) from None
    return text


def to_utf8(data: bytes, encoding: str) -> bytes:
    """The file's text as UTF-8 without a byte-order mark; FileRejected when it is not text in `encoding`."""
    text = decode(data, encoding)
    if _is_utf8(encoding):
        return data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    return text.encode("utf-8")


def _check_header(lines: Lines, contract: Contract) -> list[str]:
    header = _split(lines.text(0), contract.delimiter)
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
    return header


def _read_plain(lines: Lines, keep: np.ndarray, delimiter: str, width: int) -> pa.Table | None:
    """Arrow's parse of the kept lines (all text, quoting off), or None if it does not give one row per line."""
    names = [f"f{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(gather_lines(lines, keep))),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=False, escape_char=False,
                                              newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=False, check_utf8=False),
        )
    except pa.ArrowInvalid:
        return None
    return table if table.num_rows == int(keep.sum()) else None


def parse_bytes(path: Path, data: bytes, contract: Contract, *, sha256: str | None = None) -> ParsedFile:
    """Parse file content; raise FileRejected when the file as a whole is unreadable. `sha256` is the content's
    hash when the caller has already taken it."""
    if not data or data.isspace():
        raise FileRejected("empty file: no header line")
    lines = split_lines(to_utf8(data, contract.encoding))
    header = _check_header(lines, contract)
    # Columns are matched by name, so a file with the same columns in another order still reads.
    positions = [header.index(h) for h in contract.header]
    width = len(header)
    delim = contract.delimiter

    plain = plain_lines(lines, delim, width)
    plain[0] = False
    table = _read_plain(lines, plain, delim, width) if plain.any() else None
    if table is None:
        plain[:] = False
    exact = np.flatnonzero(~plain)
    exact = exact[exact > 0]

    rows: list[list[str]] = []
    row_at: list[int] = []
    bad: list[BadLine] = []
    texts = [lines.text(i) for i in exact.tolist()]
    blank = [not t.strip() for t in texts]
    split = iter(_split_each([t for t, b in zip(texts, blank, strict=True) if not b], delim))
    for i, line, is_blank in zip(exact.tolist(), texts, blank, strict=True):
        if is_blank:
            bad.append(BadLine(i + 1, line, "blank line"))
            continue
        fields = next(split)
        if fields is None:
            bad.append(BadLine(i + 1, line, "malformed CSV: unbalanced quote"))
            continue
        if len(fields) != width:
            bad.append(BadLine(i + 1, line, f"expected {width} fields, found {len(fields)}"))
            continue
        rows.append(fields)
        row_at.append(i)

    index = np.concatenate((np.flatnonzero(plain), np.asarray(row_at, dtype=np.int64))).astype(np.int64)
    order = np.argsort(index, kind="stable") if row_at and table is not None else None
    columns: dict[str, pa.Array] = {}
    for col, pos in zip(contract.columns, positions, strict=True):
        parts = [table.column(pos).combine_chunks()] if table is not None else []
        if rows:
            parts.append(pa.array([r[pos] for r in rows], pa.string()))
        arr = pa.concat_arrays(parts) if parts else pa.array([], pa.string())
        columns[col.name] = arr.take(order) if order is not None else arr
    line_numbers = (index[order] if order is not None else index) + 1
    return ParsedFile(path=path, sha256=sha256 or sha256_of(data), size=len(data), columns=columns,
                      lines=line_numbers, text=lines, bad=bad)


def parse_file(path: Path, contract: Contract) -> ParsedFile:
    return parse_bytes(path, path.read_bytes(), contract)
