"""Turn columns of text into typed Arrow arrays as the contract says, marking every value that does not fit.

Each converter returns the typed array (null where the text was empty or invalid) and a mask of the values that
were present but invalid, so the caller can quarantine those rows with a reason instead of silently nulling them.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_contracts.loader import Column

LOCAL_TZ = "Europe/London"

_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_INTEGER = r"^[-+]?\d+$"
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}


def text(values: pa.Array | list[str]) -> pa.Array:
    """Strings with surrounding blanks trimmed and empty values as null."""
    arr = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
    if arr.type == pa.string() and arr.offset == 0 and len(arr):
        lens, edges = _lengths_and_edges(arr)
        # Nothing to trim unless a value starts or ends with a blank or a non-ASCII byte (which may begin a
        # Unicode space): then the values are left as they are and only empty ones become null.
        if not edges.any():
            return _null_where_empty(arr, lens)
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def _lengths_and_edges(arr: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's byte length, and whether its first or last byte could be whitespace."""
    offsets = np.frombuffer(arr.buffers()[1], np.int32)[:len(arr) + 1]
    lens = np.diff(offsets)
    data = arr.buffers()[2]
    if data is None or not offsets[-1]:
        return lens, np.zeros(0, bool)
    a = np.frombuffer(data, np.uint8)
    nonempty = lens > 0
    ends = np.concatenate((a[offsets[:-1][nonempty]], a[offsets[1:][nonempty] - 1]))
    return lens, (ends <= 0x20) | (ends >= 0x7F)


def _null_where_empty(arr: pa.StringArray, lens: np.ndarray) -> pa.Array:
    empty = lens == 0
    if not empty.any():
        return arr
    valid = ~empty
    if arr.null_count:
        valid &= arr.is_valid().to_numpy(zero_copy_only=False)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.StringArray.from_buffers(len(arr), arr.buffers()[1], arr.buffers()[2], bitmap,
                                       null_count=int(len(arr) - valid.sum()))


def _invalid(present: pa.Array, ok: pa.Array) -> pa.Array:
    return pc.and_(pc.is_valid(present), pc.invert(pc.fill_null(ok, False)))


def _number(arr: pa.Array, pattern: str, target: pa.DataType) -> tuple[pa.Array, pa.Array]:
    """Numbers read from text of the pattern's form; other text is invalid.

    A column usually reads whole: Arrow's cast takes every present value at once, and whatever it reads as a finite
    number is of the pattern's form (a test holds this on generated text), so the pattern is matched only when the
    cast refuses a value or reads one as NaN or infinite (Arrow reads "nan" and "inf"; the pattern does not). An
    integer of the pattern's form that does not fit 64 bits is invalid, as is text Arrow cannot read at all."""
    try:
        values = pc.cast(arr, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = None
    if values is not None and (not pa.types.is_floating(target) or not _any_not_finite(values)):
        return values, none_invalid(len(arr))
    ok = pc.match_substring_regex(arr, pattern)
    clean = pc.if_else(ok, arr, pa.scalar(None, pa.string()))
    if pa.types.is_integer(target):
        # Arrow's integer cast refuses a leading "+" (the pattern allows one) and values beyond 64 bits.
        clean = pc.utf8_ltrim(clean, "+")
        ok = pc.and_(ok, pa.array(~_beyond_int64(clean)))
        clean = pc.if_else(ok, clean, pa.scalar(None, pa.string()))
    return pc.cast(clean, target), _invalid(arr, ok)


def _beyond_int64(digits: pa.Array) -> np.ndarray:
    """True where integer text does not fit 64 bits: only values near the limit are read exactly, in Python."""
    near = pc.fill_null(pc.greater_equal(pc.abs(pc.cast(digits, pa.float64())), 9e18), False)
    out = near.to_numpy(zero_copy_only=False).copy()
    for i in np.flatnonzero(out).tolist():
        out[i] = not -(2**63) <= int(digits[i].as_py()) <= 2**63 - 1
    return out


def _any_not_finite(values: pa.Array) -> bool:
    return bool(pc.any(pc.invert(pc.is_finite(values))).as_py())


def _local_to_utc(naive: pa.Array) -> pa.Array:
    local = pc.assume_timezone(naive, timezone=LOCAL_TZ, ambiguous="earliest", nonexistent="earliest")
    return pc.cast(local, pa.timestamp("us", tz="UTC"))


def _real_dates(arr: pa.Array, date_fmt: str, width: int | None) -> pa.Array:
    """True where the date part exists in the calendar: Arrow's strptime rolls 31/02 over to 02/03, so the
    parsed date is formatted back and compared with the text."""
    part = pc.utf8_slice_codeunits(arr, 0, width) if width else arr
    # A month of rows holds few distinct dates: each is checked once and the answer spread back over the rows.
    encoded = pc.dictionary_encode(part)
    dates = encoded.dictionary
    parsed = pc.strptime(dates, format=date_fmt, unit="s", error_is_null=True)
    real = pc.fill_null(pc.equal(pc.strftime(parsed, format=date_fmt), dates), False)
    return pc.fill_null(real.take(encoded.indices), False)


def _timestamp(arr: pa.Array, fmt: str | None) -> tuple[pa.Array, pa.Array]:
    if fmt in (None, "iso8601"):
        with_offset = pc.strptime(arr, format="%Y-%m-%dT%H:%M:%S%z", unit="us", error_is_null=True)
        naive = pc.strptime(arr, format="%Y-%m-%dT%H:%M:%S", unit="us", error_is_null=True)
        values = pc.coalesce(pc.cast(with_offset, pa.timestamp("us", tz="UTC")), _local_to_utc(naive))
    else:
        values = _local_to_utc(pc.strptime(arr, format=fmt, unit="us", error_is_null=True))
    date_fmt = (fmt or "%Y-%m-%dT").replace("T", " ").split(" ")[0] if fmt not in (None, "iso8601") else "%Y-%m-%d"
    ok = pc.and_(pc.is_valid(values), _real_dates(arr, date_fmt, 10))
    values = pc.if_else(ok, values, pa.scalar(None, values.type))
    return values, _invalid(arr, ok)


def _date(arr: pa.Array, fmt: str | None) -> tuple[pa.Array, pa.Array]:
    fmt = fmt or "%Y-%m-%d"
    ok = _real_dates(arr, fmt, None)
    parsed = pc.strptime(arr, format=fmt, unit="s", error_is_null=True)
    values = pc.if_else(ok, pc.cast(parsed, pa.date32()), pa.scalar(None, pa.date32()))
    return values, _invalid(arr, ok)


def _boolean(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    is_true = pc.is_in(arr, pa.array(sorted(_TRUE)))
    is_false = pc.is_in(arr, pa.array(sorted(_FALSE)))
    ok = pc.or_(is_true, is_false)
    values = pc.if_else(ok, is_true, pa.scalar(None, pa.bool_()))
    return values, _invalid(arr, ok)


ARROW_TYPES = {
    "string": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "boolean": pa.bool_(),
}


_FALSE_MASK = pa.repeat(pa.scalar(False), 0)


def none_invalid(n: int) -> pa.Array:
    """A mask of `n` values none of which is invalid: slices of one shared array of falses, grown when needed."""
    global _FALSE_MASK
    if len(_FALSE_MASK) < n:
        _FALSE_MASK = pa.repeat(pa.scalar(False), max(n, 2 * len(_FALSE_MASK), 1 << 16))
    return _FALSE_MASK.slice(0, n)


def convert(col: Column, arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Typed values and the mask of present-but-unparseable values for one contract column."""
    kind = col.logical_type
    if kind == "string":
        return arr, none_invalid(len(arr))
    if kind == "number":
        return _number(arr, _NUMBER, pa.float64())
    if kind == "integer":
        return _number(arr, _INTEGER, pa.int64())
    if kind == "date":
        return _date(arr, col.fmt)
    if kind == "timestamp":
        return _timestamp(arr, col.fmt)
    if kind == "boolean":
        return _boolean(arr)
    raise ValueError(f"unsupported logical type {kind!r} for column {col.name}")


def _month_start(month: str) -> datetime:
    year, mm = (int(p) for p in month.split("-"))
    return datetime(year, mm, 1, tzinfo=ZoneInfo(LOCAL_TZ))


def outside_month(col: Column, values: pa.Array, raw: pa.Array, fmt: str | None, month: str) -> pa.Array:
    """True where a row's month (as `month_of` reads it) is known and is not `month`."""
    if col.logical_type == "timestamp" and fmt != "quarter":
        # The UK wall-clock month of an instant is `month` exactly when the instant falls between the local
        # midnights that start this month and the next: two comparisons, not a formatted date per row.
        year, mm = (int(p) for p in month.split("-"))
        start = _month_start(month)
        end = _month_start(f"{year + mm // 12:04d}-{mm % 12 + 1:02d}")
        utc = pa.timestamp("us", tz="UTC")
        inside = pc.and_(pc.greater_equal(values, pa.scalar(start, utc)), pc.less(values, pa.scalar(end, utc)))
        return pc.fill_null(pc.invert(inside), False)
    row_month = month_of(col, values, raw, fmt)
    return pc.fill_null(pc.and_(pc.is_valid(row_month), pc.not_equal(row_month, month)), False)


def month_of(col: Column, values: pa.Array, raw: pa.Array, fmt: str | None) -> pa.Array:
    """The YYYY-MM each row belongs to, read from its month column (local time for timestamps)."""
    if fmt == "quarter":
        raw = pc.if_else(pc.match_substring_regex(raw, r"^\d{4}-Q[1-4]$"), raw, pa.scalar(None, pa.string()))
        year = pc.utf8_slice_codeunits(raw, 0, 4)
        q = pc.cast(pc.utf8_slice_codeunits(raw, 6, 7), pa.int64(), safe=False)
        first = pc.add(pc.multiply(pc.subtract(q, 1), 3), 1)
        mm = pc.utf8_lpad(pc.cast(first, pa.string()), 2, "0")
        return pc.binary_join_element_wise(year, mm, "-")
    if col.logical_type == "timestamp":
        # Arrow formats a zoned timestamp in its zone: the month is the UK wall-clock month.
        return pc.strftime(pc.cast(values, pa.timestamp("us", tz=LOCAL_TZ)), format="%Y-%m")
    if col.logical_type == "date":
        return pc.strftime(values, format="%Y-%m")
    return raw

