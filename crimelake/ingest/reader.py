"""Read one landed extract file into columns of text, as its contract describes it.

None of the sources writes values that span lines, so a broken line (wrong number of fields, an unbalanced quote, a
row cut short by truncation) costs that line alone, which is quarantined with its raw text, and never swallows the
lines after it. Bytes that are not text in the file's encoding, or a NUL byte, cost the line holding them alone, in
the same way. A file that cannot be read at all (no header, a header that is not text or that the contract does not
describe) is rejected whole with a `FileRejected` naming the reason.

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

from crimelake.ingest.lines import Lines, gather_lines, plain_lines, positions, split_lines, unquoted_lines
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


@dataclass(frozen=True)
class Decoded:
    """A file's text as UTF-8 (no byte-order mark) and the lines that are not text in the file's encoding, by
    0-based line index with the reason. Such a line stays in the buffer (its undecodable bytes written as
    `\\xNN` escapes), so line numbers and raw text are kept; it is quarantined, not parsed."""

    buf: bytes
    bad: dict[int, str]


def _line_spans(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    a = np.frombuffer(data, np.uint8)
    newlines = np.flatnonzero(a == 0x0A)
    starts = np.concatenate(([0], newlines + 1)).astype(np.int64)
    ends = np.concatenate((newlines, [len(a)])).astype(np.int64)
    return starts, ends


def _lines_holding(a: np.ndarray, starts: np.ndarray, ends: np.ndarray, at: np.ndarray) -> np.ndarray:
    """0-based indices of the lines that hold the byte positions `at` (each line once)."""
    return np.unique(np.searchsorted(starts, at, side="right") - 1) if len(at) else np.zeros(0, np.int64)


def decode_lines(data: bytes, encoding: str) -> Decoded:
    """The file as UTF-8 text, line by line: a NUL byte or a byte sequence that is not `encoding` costs the line
    that holds it alone. The whole buffer is decoded in one call; lines are looked at one by one only when that
    fails, and then only those holding a NUL or a non-ASCII byte."""
    utf8 = _is_utf8(encoding)
    if utf8 and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    nul = positions(data, 0)
    if utf8 and not len(nul) and data.isascii():  # valid UTF-8 as it stands, without a decoded copy
        return Decoded(data, {})
    a = np.frombuffer(data, np.uint8)
    try:
        text = data.decode("utf-8" if utf8 else encoding)
    except UnicodeDecodeError:
        text = None
    if text is not None and not len(nul):
        return Decoded(data if utf8 else text.encode("utf-8"), {})
    starts, ends = _line_spans(data)
    bad: dict[int, str] = {}
    for i in _lines_holding(a, starts, ends, nul).tolist():
        col = data.index(b"\x00", int(starts[i])) - int(starts[i]) + 1
        bad[i] = f"NUL byte at byte {col} of the line"
    if text is None:
        # A line of ASCII bytes alone decodes the same in any encoding the contracts name.
        suspects = _lines_holding(a, starts, ends, np.flatnonzero(a >= 0x80)) if utf8 else range(len(starts))
        for i in (suspects.tolist() if utf8 else suspects):
            if i in bad:
                continue
            line = data[int(starts[i]):int(ends[i])]
            try:
                line.decode("utf-8" if utf8 else encoding)
            except UnicodeDecodeError as e:
                bad[i] = f"not valid {'UTF-8' if utf8 else encoding} at byte {e.start + 1} of the line " \
                         f"(0x{line[e.start]:02x})"
    if not bad:  # only reached for a non-UTF-8 encoding whose lines all decode alone
        return Decoded(data.decode(encoding).encode("utf-8"), {})
    parts = []
    prev = 0
    for i in sorted(bad):
        s, e = int(starts[i]), int(ends[i])
        parts.append(data[prev:s] if utf8 else data[prev:s].decode(encoding).encode("utf-8"))
        parts.append(data[s:e].decode("utf-8" if utf8 else encoding, errors="backslashreplace")
                     .replace("\x00", "\\x00").encode("utf-8"))
        prev = e
    parts.append(data[prev:] if utf8 else data[prev:].decode(encoding).encode("utf-8"))
    return Decoded(b"".join(parts), bad)


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


def _read_plain(lines: Lines, keep: np.ndarray, delimiter: str, width: int,
                *, counted: bool) -> tuple[pa.Table, np.ndarray] | None:
    """Arrow's parse of the kept lines (all text, quoting off) and the positions, among the kept lines, of those it
    refused for their number of fields; or None if its rows cannot be matched to the lines. `counted`: the kept
    lines' delimiters were counted already, so Arrow is to refuse none."""
    names = [f"f{i}" for i in range(width)]
    refused: list[int] = []

    def refuse(row) -> str:
        if counted or row.number is None:
            return "error"
        refused.append(row.number - 1)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(gather_lines(lines, keep))),
            # One thread per file, so that Arrow numbers the lines it refuses (the files are read two at a time).
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=False, escape_char=False,
                                              newlines_in_values=False, ignore_empty_lines=False,
                                              invalid_row_handler=refuse),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=False, check_utf8=False),
        )
    except pa.ArrowInvalid:
        return None
    # Arrow reads no fewer rows than lines (quoting off, empty lines kept); more, where a carriage return inside a
    # line ended it, and its numbers then no longer name lines.
    if table.num_rows != int(keep.sum()) - len(refused):
        return None
    return table, np.asarray(refused, dtype=np.int64)


# Up to this many rows read line by line are set among Arrow's rows slice by slice; more are ordered by a take.
MAX_INSERTED = 512


def _in_line_order(plain: pa.ChunkedArray | None, exact: pa.Array | None, cuts: np.ndarray) -> pa.Array:
    """One column of a file in line order: Arrow's rows (`plain`), with the rows read line by line (`exact`) set in
    before Arrow's row `cuts[k]`. The few rows a file reads line by line are set in between slices of Arrow's
    chunks, so that the column is copied once."""
    if exact is None:
        if plain is None:
            return pa.array([], pa.string())
        return plain.chunk(0) if plain.num_chunks == 1 else plain.combine_chunks()
    if plain is None or not len(plain):
        return exact
    if len(exact) > MAX_INSERTED:
        order = np.argsort(np.concatenate((np.arange(len(plain)), cuts - 0.5)), kind="stable")
        return pa.concat_arrays([*plain.chunks, exact]).take(pa.array(order))
    pieces: list[pa.Array] = []
    prev = 0
    for k, cut in enumerate(cuts.tolist()):
        pieces.extend(plain.slice(prev, cut - prev).chunks)
        pieces.append(exact.slice(k, 1))
        prev = cut
    pieces.extend(plain.slice(prev).chunks)
    return pa.concat_arrays(pieces)


def parse_bytes(path: Path, data: bytes, contract: Contract, *, sha256: str | None = None) -> ParsedFile:
    """Parse file content; raise FileRejected when the file as a whole is unreadable. `sha256` is the content's
    hash when the caller has already taken it."""
    if path.suffix.lower() == ".geojson":
        from crimelake.ingest.geojson import parse_geojson  # imports this module's types

        return parse_geojson(path, data, contract, sha256=sha256)
    if not data or data.isspace():
        raise FileRejected("empty file: no header line")
    decoded = decode_lines(data, contract.encoding)
    if 0 in decoded.bad:
        raise FileRejected(f"not a text file in {contract.encoding}: header line: {decoded.bad[0]}", 1)
    lines = split_lines(decoded.buf)
    header = _check_header(lines, contract)
    # Columns are matched by name, so a file with the same columns in another order still reads.
    positions = [header.index(h) for h in contract.header]
    width = len(header)
    delim = contract.delimiter

    undecodable = np.fromiter(decoded.bad, np.int64, len(decoded.bad))
    undecodable = undecodable[undecodable < len(lines)]
    # Arrow counts each line's fields as it parses, and names the lines it refuses; where its rows cannot be matched
    # to the lines (a carriage return inside a line makes two of one), the delimiters of every line are counted
    # first.
    read = None
    for counted in (False, True):
        plain = plain_lines(lines, delim, width) if counted else unquoted_lines(lines, delim, width)
        if plain is None:
            continue
        plain[0] = False
        plain[undecodable] = False
        read = _read_plain(lines, plain, delim, width, counted=counted) if plain.any() else None
        if read is not None or not plain.any():
            break
    table = None
    if read is None:
        plain[:] = False
    else:
        table, refused = read
        plain[np.flatnonzero(plain)[refused]] = False
    exact = np.flatnonzero(~plain)
    exact = exact[exact > 0]

    rows: list[list[str]] = []
    row_at: list[int] = []
    bad: list[BadLine] = []
    texts = [lines.text(i) for i in exact.tolist()]
    blank = [not t.strip() for t in texts]
    split = iter(_split_each([t for t, b in zip(texts, blank, strict=True) if not b], delim))
    for i, line, is_blank in zip(exact.tolist(), texts, blank, strict=True):
        if i in decoded.bad:
            bad.append(BadLine(i + 1, line, decoded.bad[i]))
            if not is_blank:
                next(split)
            continue
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

    plain_at = np.flatnonzero(plain)
    exact_at = np.asarray(row_at, dtype=np.int64)
    # Where each row read line by line falls among Arrow's rows (both are in line order).
    cuts = np.searchsorted(plain_at, exact_at)
    columns: dict[str, pa.Array] = {}
    for col, pos in zip(contract.columns, positions, strict=True):
        exact = pa.array([r[pos] for r in rows], pa.string()) if rows else None
        columns[col.name] = _in_line_order(table.column(pos) if table is not None else None, exact, cuts)
    line_numbers = np.insert(plain_at, cuts, exact_at) + 1
    return ParsedFile(path=path, sha256=sha256 or sha256_of(data), size=len(data), columns=columns,
                      lines=line_numbers, text=lines, bad=bad)


def parse_file(path: Path, contract: Contract) -> ParsedFile:
    return parse_bytes(path, path.read_bytes(), contract)

