"""Check the rows of one parsed file against its contract and type them.

Every rule the contract states becomes a vectorised check; a row that breaks any of them is set aside with every
reason it broke, never dropped. Rows that pass are typed, given WGS84 coordinates and an H3 cell, and returned.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import h3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from h3ronpy.vector import coordinates_to_cells
from pyproj import Transformer

from crimelake.ingest import coerce, row_rules
from crimelake.ingest.forces import wrong_force
from crimelake.ingest.lines import runs
from crimelake.ingest.reader import ParsedFile
from crimelake.lake import few_distinct
from crimelake.reference import boundary
from data_contracts.loader import Contract

# One set per thread: files are checked on more than one thread, and a pyproj Transformer is not to be shared.
_TRANSFORMERS = threading.local()


def _to_wgs84(crs: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if crs in ("EPSG:4326", "WGS84"):
        return x, y
    cache: dict[str, Transformer] = _TRANSFORMERS.__dict__
    if crs not in cache:
        cache[crs] = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = cache[crs].transform(x, y)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def h3_cells(lat: np.ndarray, lon: np.ndarray, resolution: int) -> pa.Array:
    """H3 cell per point (null where either coordinate is NaN). Police locations are snapped to shared map points,
    so each distinct point is indexed once (by h3ronpy, H3's Rust port over whole arrays; a test holds it equal to
    the h3 library point by point) and the cells are spread back over the rows."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    present = ~(np.isnan(lat) | np.isnan(lon))
    out = pa.nulls(len(lat), pa.string())
    if not present.any():
        return out
    pairs = np.empty(int(present.sum()), dtype=np.complex128)
    pairs.real, pairs.imag = lat[present], lon[present]
    points, inverse = np.unique(pairs, return_inverse=True)
    # Arrow arrays, which h3ronpy takes as they are: numpy arrays it would read value by value in Python.
    cells = pa.array(coordinates_to_cells(pa.array(points.real), pa.array(points.imag), resolution)).to_numpy()
    index = np.full(len(lat), -1, dtype=np.int64)
    index[present] = inverse.reshape(-1)
    return _cell_strings(cells).take(pa.array(index, mask=~present))


def _cell_strings(cells: np.ndarray) -> pa.Array:
    """Cell ids as H3's lower-case hex strings. Every cell id has its mode bits (0001) at bits 59-62, so its
    hex form is exactly 15 digits, written here from the id's nibbles without a Python loop."""
    if len(cells) and not ((cells >> np.uint64(59)) == 1).all():
        return pa.array([h3.int_to_str(int(c)) for c in cells.tolist()], pa.string())
    shifts = np.arange(56, -1, -4, dtype=np.uint64)
    nibbles = ((cells[:, None] >> shifts) & np.uint64(0xF)).astype(np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", np.uint8)[nibbles]
    offsets = np.arange(len(cells) + 1, dtype=np.int32) * 15
    return pa.StringArray.from_buffers(len(cells), pa.py_buffer(offsets), pa.py_buffer(digits.tobytes()))


def matches(arr: pa.Array, pattern: str) -> pa.Array:
    """Arrow's regular expression match of every value (null for null). RE2 costs about the same per value
    whatever its length, so a column of few distinct values (a month, an area code) is matched once per distinct
    value and the answers spread back over the rows: on a national month of street rows, the month column in a
    third of the time and LSOA codes in half. Ids, where nearly every value is new, are matched row by row."""
    if not few_distinct(arr):
        return pc.match_substring_regex(arr, pattern)
    encoded = pc.dictionary_encode(arr)
    return pc.match_substring_regex(encoded.dictionary, pattern).take(encoded.indices)


@dataclass
class Checked:
    """Typed rows that passed, and for each failed row its index into the parsed file and its reasons."""

    table: pa.Table
    kept: np.ndarray
    failed: dict[int, list[str]]


class _Reasons:
    def __init__(self, n: int):
        self.n = n
        self.by_row: dict[int, list[str]] = {}

    def add(self, mask: pa.Array | np.ndarray, message) -> None:
        if isinstance(mask, pa.BooleanArray) and not mask.true_count:  # the usual case, asked without a copy
            return
        m = mask.to_numpy(zero_copy_only=False) if isinstance(mask, pa.Array | pa.ChunkedArray) else mask
        m = np.asarray(m, dtype=bool)
        if not m.any():  # the usual case, and cheaper to ask than to list no rows
            return
        for i in np.flatnonzero(m):
            self.by_row.setdefault(int(i), []).append(message(int(i)) if callable(message) else message)


def check(parsed: ParsedFile, contract: Contract, month: str, h3_resolution: int,
          groups: dict[str, str] | None = None) -> Checked:
    """`groups` are what the file's name says (its force, month, ...), checked against the rows."""
    n = len(parsed.lines)
    reasons = _Reasons(n)
    raw = {c.name: coerce.text(parsed.columns[c.name]) for c in contract.columns}
    typed: dict[str, pa.Array] = {}
    supp = contract.suppression or {}
    suppressed = None
    for col in contract.columns:
        arr = raw[col.name]
        if supp and col.name == supp.get("column"):
            suppressed = pc.fill_null(pc.equal(arr, str(supp.get("marker", "c"))), False)
            arr = pc.if_else(suppressed, pa.scalar(None, pa.string()), arr)
        values, bad = coerce.convert(col, arr)
        reasons.add(bad, lambda i, c=col, v=arr: f"{c.header}: {v[i].as_py()!r} is not a valid {c.logical_type}"
                    + (f" ({c.fmt})" if c.fmt else ""))
        if col.required:
            missing = pc.is_null(arr)
            if suppressed is not None and col.name == supp.get("column"):
                # A value suppressed at source is published as the marker: present, just not shown.
                missing = pc.and_(missing, pc.invert(suppressed))
            reasons.add(missing, f"{col.header}: required value missing")
        if col.enum is not None:
            out = pc.and_(pc.is_valid(arr), pc.invert(pc.is_in(arr, pa.array(col.enum))))
            reasons.add(out, lambda i, c=col, v=arr: f"{c.header}: {v[i].as_py()!r} is not one of {list(c.enum)}")
        if col.pattern and col.logical_type == "string":
            nomatch = pc.and_(pc.is_valid(arr), pc.invert(matches(arr, col.pattern)))
            reasons.add(nomatch, lambda i, c=col, v=arr: f"{c.header}: {v[i].as_py()!r} does not match {c.pattern}")
        if col.minimum is not None:
            low = pc.fill_null(pc.less(values, col.minimum), False)
            reasons.add(low, lambda i, c=col, v=values: f"{c.header}: {v[i].as_py()} is below the minimum {c.minimum}")
        if col.maximum is not None:
            high = pc.fill_null(pc.greater(values, col.maximum), False)
            reasons.add(high, lambda i, c=col, v=values: f"{c.header}: {v[i].as_py()} is above the maximum {c.maximum}")
        typed[col.name] = values

    for mask, message in row_rules.broken(contract.custom.get("rowRules") or [], raw, typed, h3_resolution):
        reasons.add(mask, message)
    # The row's own month must be the month it was delivered for (a source without a month column, such as a
    # log of dated events, is taken to belong to the month of its folder).
    if contract.month_column:
        mcol = contract.column(contract.month_column)
        wrong = coerce.outside_month(mcol, typed[mcol.name], raw[mcol.name], contract.month_format, month)

        def belongs(i: int) -> str:
            row = coerce.month_of(mcol, typed[mcol.name].slice(i, 1), raw[mcol.name].slice(i, 1),
                                  contract.month_format)
            return f"{mcol.header}: belongs to {row[0].as_py()}, not the file's month {month}"

        reasons.add(wrong, belongs)

    derived: dict[str, pa.Array] = {"month": pa.repeat(pa.scalar(month, pa.string()), n)}
    if contract.label_column:
        lab = raw[contract.label_column]
        header = contract.column(contract.label_column).header
        unmapped = pc.and_(pc.is_valid(lab), pc.invert(pc.is_in(lab, pa.array(sorted(contract.labels)))))
        reasons.add(unmapped, lambda i: f"{header}: label {lab[i].as_py()!r} is not mapped by contract {contract.ref}")
    if contract.force_column and (groups or {}).get("force"):
        fcol = contract.column(contract.force_column)
        wrong = wrong_force(raw[fcol.name], groups["force"])
        reasons.add(wrong.mask, lambda i: f"{fcol.header}: {raw[fcol.name][i].as_py()!r} {wrong.why}")
    if contract.knife_column:
        derived["knife_enabled"] = pc.is_in(raw[contract.knife_column], pa.array(list(contract.knife_true)))
        derived["knife_enabled"] = pc.if_else(pc.is_null(raw[contract.knife_column]),
                                              pa.scalar(None, pa.bool_()), derived["knife_enabled"])
    if suppressed is not None:
        derived[f"{supp['column']}_suppressed"] = suppressed
        floor = int(supp.get("minimum_published", 5))
        small = pc.fill_null(pc.and_(pc.greater(typed[supp["column"]], 0), pc.less(typed[supp["column"]], floor)), False)
        reasons.add(small, lambda i: f"{contract.column(supp['column']).header}: unsuppressed count "
                    f"{typed[supp['column']][i].as_py()} below {floor} (must be published as {supp.get('marker', 'c')!r})")

    if contract.x and contract.y:
        xv = pc.cast(typed[contract.x], pa.float64()).to_numpy(zero_copy_only=False)
        yv = pc.cast(typed[contract.y], pa.float64()).to_numpy(zero_copy_only=False)
        has_x, has_y = ~np.isnan(xv), ~np.isnan(yv)
        hx, hy = contract.column(contract.x).header, contract.column(contract.y).header
        reasons.add(has_x ^ has_y, f"{hx}/{hy}: only one of the pair is present")
        if contract.coords_required:
            reasons.add(~has_x & ~has_y, f"{hx}/{hy}: location missing")
        both = has_x & has_y
        lon = np.full(n, np.nan)
        lat = np.full(n, np.nan)
        if both.any():
            lon[both], lat[both] = _to_wgs84(contract.crs or "EPSG:4326", xv[both], yv[both])
        outside = both & ~boundary.inside(lon, lat, raw[contract.area_code] if contract.area_code else None)
        reasons.add(outside, lambda i: f"{hx}/{hy}: ({xv[i]}, {yv[i]}) lies outside England and Wales")
        ok = both & ~outside
        lon[~ok] = np.nan
        lat[~ok] = np.nan
        derived["wgs84_lon"] = pa.array(lon, pa.float64(), mask=~ok)
        derived["wgs84_lat"] = pa.array(lat, pa.float64(), mask=~ok)
        keep_pts = np.ones(n, dtype=bool)
        keep_pts[list(reasons.by_row)] = False
        lat_for_h3 = np.where(keep_pts, lat, np.nan)
        lon_for_h3 = np.where(keep_pts, lon, np.nan)
        derived["h3_cell"] = h3_cells(lat_for_h3, lon_for_h3, h3_resolution)

    kept = np.ones(n, dtype=bool)
    columns = {name: arr for name, arr in {**typed, **derived}.items() if name != "month"}
    columns["month"] = derived["month"]
    table = pa.table(columns)
    if reasons.by_row:
        kept[list(reasons.by_row)] = False
        table = kept_rows(table, kept)
    return Checked(table=table, kept=np.flatnonzero(kept), failed=reasons.by_row)


# Above this many runs of kept rows, one filtered copy of the table costs less than the slices.
MAX_RUNS = 256


def kept_rows(table: pa.Table, kept: np.ndarray) -> pa.Table:
    """The rows of `table` where `kept` is true, in order. The few rows a file sets aside leave runs of kept rows
    between them, which are taken as slices of the table, without copying its text; a table with more than
    `MAX_RUNS` runs is filtered. The result may hold many chunks."""
    starts, stops = runs(kept)
    if len(starts) > MAX_RUNS:
        return table.filter(pa.array(kept))
    if not len(starts):
        return table.slice(0, 0)
    return pa.concat_tables([table.slice(a, b - a) for a, b in zip(starts.tolist(), stops.tolist(), strict=True)])
