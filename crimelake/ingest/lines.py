"""The lines of a UTF-8 text buffer, found and sorted out with numpy rather than one by one in Python.

A file is handled as one byte buffer: line offsets come from the positions of its newline bytes, and per-line
counts (quotes, delimiters, carriage returns) from where those bytes fall among the line offsets. That is enough to
pick out the plain lines (no quoting at all, exactly the expected number of delimiters), which Arrow's CSV parser
reads in one go; every other line is left for the exact, line-by-line reading.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

_NEWLINE, _CR, _QUOTE = 0x0A, 0x0D, 0x22


@dataclass(frozen=True)
class Lines:
    """Every line of `buf`: `starts[i]:ends[i]` is line i's text (its newline and one trailing CR left out), and
    `nexts[i]` is where the line after it starts (the end of the buffer for the last line)."""

    buf: bytes
    starts: np.ndarray
    ends: np.ndarray
    nexts: np.ndarray

    @property
    def bytes(self) -> np.ndarray:
        return np.frombuffer(self.buf, np.uint8)

    def __len__(self) -> int:
        return len(self.starts)

    def text(self, i: int) -> str:
        return self.buf[int(self.starts[i]):int(self.ends[i])].decode("utf-8")

    def texts(self, index: np.ndarray) -> pa.Array:
        """The text of the lines at `index`, as one Arrow string array."""
        index = np.asarray(index, dtype=np.int64)
        return text_array(self.bytes, self.starts[index], self.ends[index])


def split_lines(buf: bytes) -> Lines:
    """Split on LF as `str.split("\\n")` does, dropping the empty piece after a final newline."""
    a = np.frombuffer(buf, np.uint8)
    newlines = np.flatnonzero(a == _NEWLINE)
    starts = np.concatenate(([0], newlines + 1)).astype(np.int64)
    ends = np.concatenate((newlines, [len(a)])).astype(np.int64)
    if len(starts) > 1 and starts[-1] == len(a):
        starts, ends = starts[:-1], ends[:-1]
    nexts = np.append(starts[1:], len(a)).astype(np.int64)
    last = np.maximum(ends - 1, 0)
    ends = ends - ((ends > starts) & (a[last] == _CR) if len(a) else 0)
    return Lines(buf, starts, ends, nexts)


# Up to this many occurrences of a byte are found one memchr after another; more are found by numpy in one pass.
FEW = 64


def positions(buf: bytes, byte: int) -> np.ndarray:
    """Where `byte` occurs in `buf`. A byte the buffer holds rarely or not at all (a NUL, a quote) is found with a
    memchr per occurrence, rather than a pass of numpy and a mask the size of the text."""
    b = bytes((byte,))
    found: list[int] = []
    at = buf.find(b)
    while at >= 0 and len(found) < FEW:
        found.append(at)
        at = buf.find(b, at + 1)
    if at < 0:
        return np.asarray(found, dtype=np.int64)
    return np.flatnonzero(np.frombuffer(buf, np.uint8) == byte)


def count_per_line(lines: Lines, byte: int) -> np.ndarray:
    """How many times `byte` occurs in each line's text."""
    at = positions(lines.buf, byte)
    return np.searchsorted(at, lines.ends) - np.searchsorted(at, lines.starts)


def plain_lines(lines: Lines, delimiter: str, width: int) -> np.ndarray:
    """Lines that split on the delimiter alone into exactly `width` fields, read identically by Arrow's parser
    (quoting off) and by Python's csv module: no quote character, no carriage return inside the line, a visible
    ASCII character (so the line is not blank) and no leading non-ASCII byte (Arrow would drop a leading BOM)."""
    n = len(lines)
    d = delimiter.encode("utf-8")
    if len(d) != 1 or d in b'"\r\n' or n == 0:
        return np.zeros(n, dtype=bool)
    a = lines.bytes
    ok = count_per_line(lines, _QUOTE) == 0
    ok &= count_per_line(lines, _CR) == 0
    ok &= count_per_line(lines, d[0]) == width - 1
    if not (0x20 < d[0] < 0x7F and width > 1):
        # The delimiter itself does not show that a line is not blank.
        visible = np.concatenate(([0], np.cumsum((a > 0x20) & (a < 0x7F), dtype=np.int64)))
        ok &= visible[lines.ends] > visible[lines.starts]
    first = a[np.minimum(lines.starts, max(len(a) - 1, 0))] if len(a) else np.zeros(n, np.uint8)
    ok &= first < 0x80
    return ok


def unquoted_lines(lines: Lines, delimiter: str, width: int) -> np.ndarray | None:
    """The lines Arrow's parser (quoting off) may be handed without counting their delimiters first: not empty, no
    quote character, no leading non-ASCII byte. That holds when the delimiter is a visible ASCII byte and a row has
    more than one field (a line of blanks then has the wrong number of fields): Arrow refuses, by line, each line
    with the wrong number of fields (see `reader._read_plain`), which is then read line by line. A carriage return
    inside a line, where Arrow ends a line, shows as more rows than lines, and the file's delimiters are then counted
    line by line (`plain_lines`). None when a file's delimiters must be counted anyway.

    The delimiters of a month of street rows are five million bytes: counting them line by line (`plain_lines`)
    took about three times as long as these checks."""
    n = len(lines)
    d = delimiter.encode("utf-8")
    if len(d) != 1 or not 0x20 < d[0] < 0x7F or d[0] == _QUOTE or width < 2 or n == 0:
        return None
    a = lines.bytes
    ok = lines.ends > lines.starts
    quotes = positions(lines.buf, _QUOTE)
    if len(quotes):
        ok[np.searchsorted(lines.starts, quotes, side="right") - 1] = False
    ok &= a[np.minimum(lines.starts, len(a) - 1)] < 0x80
    return ok


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each run of true values in `mask` starts, and where it stops (the index after its last value)."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], mask, [False])).astype(np.int8)))
    return edges[0::2], edges[1::2]


def gather_lines(lines: Lines, keep: np.ndarray) -> bytes | memoryview:
    """One buffer holding the kept lines in order, each with its own line ending: runs of consecutive kept lines
    are copied whole, so the cost is one copy of the kept bytes."""
    view = memoryview(lines.buf)
    first, stop = runs(keep)
    last = stop - 1
    if len(first) == 1:
        return view[lines.starts[first[0]]:lines.nexts[last[0]]]
    return b"".join(view[s:e] for s, e in zip(lines.starts[first].tolist(), lines.nexts[last].tolist(), strict=True))


def text_array(a: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """An Arrow string array of the UTF-8 slices `a[starts[i]:ends[i]]`, copied without a Python loop."""
    lens = (ends - starts).astype(np.int64)
    offsets = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    total = int(offsets[-1])
    if total:
        index = np.repeat(starts - offsets[:-1], lens) + np.arange(total, dtype=np.int64)
        data = a[index]
    else:
        data = np.zeros(0, np.uint8)
    arr = pa.LargeStringArray.from_buffers(len(lens), pa.py_buffer(offsets), pa.py_buffer(data))
    return arr.cast(pa.string())
