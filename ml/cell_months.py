"""Sparse cell-month counts laid out as dense (cells x months) arrays per forecast group, with the mask of what was
observed: the input of hot spot statistics, emerging hot spot classes and concentration measures.

``fct_cell_month_counts`` holds a row only where a cell had crime; the places are the cells of ``dim_cells`` (one
force per cell), so a cell without a row in an observed month counts zero. A force-month is *observed* when the
coverage ledger (``gold/coverage``) has a ``complete`` source for it; without a ledger, when the force has at least
one count row (any group) that month. A cell-month whose force-month is not observed is NaN, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

# Statuses of the coverage ledger under which a force-month's counts are trusted.
OBSERVED_STATUSES = ("complete",)
COUNT_COLUMNS = ["h3_cell", "force", "month", "forecast_group"]


def month_add(month: str, n: int) -> str:
    """The 'YYYY-MM' label ``n`` months after ``month`` (negative ``n`` goes back)."""
    k = int(month[:4]) * 12 + int(month[5:7]) - 1 + n
    return f"{k // 12:04d}-{k % 12 + 1:02d}"


def month_range(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` inclusive."""
    span = (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7])
    return [month_add(first, k) for k in range(span + 1)]


def ring1_matrix(cell_ids, neighbours_ring1=None, areas=None) -> sparse.csr_matrix:
    """Binary Gi* weights as a sparse (n, n) matrix: each cell with itself and its H3 ring-1 neighbours.

    ``neighbours_ring1`` (aligned with ``cell_ids``) holds ``dim_cells.neighbours_ring1`` strings (comma-separated
    H3 ids); a cell without one gets its ring from ``h3.grid_ring``. Neighbours outside ``cell_ids`` are dropped,
    and so are neighbours in another study area when ``areas`` (one label per cell, e.g. the force) is given, so
    a cell on a force boundary has fewer than seven weights and the matrix is block-diagonal by area.
    """
    ids = pd.Index(np.asarray(cell_ids, dtype=object))
    if ids.has_duplicates:
        raise ValueError("cell_ids must be unique")
    n = len(ids)
    lists = pd.Series(neighbours_ring1 if neighbours_ring1 is not None else [None] * n, dtype=object)
    if len(lists) != n:
        raise ValueError(f"neighbours_ring1 has {len(lists)} entries for {n} cells")
    absent = (lists.isna() | (lists == "")).to_numpy()
    if absent.any():
        lists = lists.copy()
        lists[absent] = [",".join(h3.grid_ring(c, 1)) for c in ids[absent]]
    exploded = lists.str.split(",").explode().str.strip()
    rows = exploded.index.to_numpy(dtype=np.int64)
    cols = ids.get_indexer(exploded.to_numpy())
    keep = (cols >= 0) & (cols != rows)
    if areas is not None:
        label = np.asarray(areas)
        keep &= label[rows] == label[np.where(keep, cols, 0)]
    # The focal cell itself is a neighbour with weight 1: that is what makes it Gi* rather than Gi.
    r = np.concatenate([np.arange(n), rows[keep]])
    c = np.concatenate([np.arange(n), cols[keep]])
    w = sparse.csr_matrix((np.ones(r.size), (r, c)), shape=(n, n))
    w.sum_duplicates()
    w.data[:] = 1.0
    return w


def _strings(col) -> pa.ChunkedArray:
    col = col if isinstance(col, pa.ChunkedArray) else pa.chunked_array([col])
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_date(col.type) or pa.types.is_timestamp(col.type):
        return pc.strftime(col, format="%Y-%m")
    return col.cast(pa.string())


def _codes(col, values) -> np.ndarray:
    """Position of every entry of ``col`` in ``values`` (-1 when absent or null)."""
    idx = pc.index_in(_strings(col), value_set=pa.array(list(values), type=pa.string()))
    return idx.fill_null(-1).to_numpy().astype(np.int64)


@dataclass(eq=False)
class CellMonths:
    """``counts[group]`` is an (n_cells, n_months) float array, NaN where ``observed`` is False. Cells are sorted by
    force then H3 id, so each force is a contiguous block of rows (:meth:`force_slices`). ``unmatched_rows`` counts
    input rows whose cell is not in the study area of the row's force (they are not counted anywhere)."""

    cells: np.ndarray
    force: np.ndarray
    months: list[str]
    counts: dict[str, np.ndarray]
    observed: np.ndarray
    neighbours_ring1: np.ndarray | None = None
    unmatched_rows: int = 0
    _ring1: sparse.csr_matrix | None = field(default=None, repr=False)

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    def force_slices(self) -> dict[str, slice]:
        starts = np.flatnonzero(np.r_[True, self.force[1:] != self.force[:-1]])
        ends = np.r_[starts[1:], len(self.force)]
        return {str(self.force[s]): slice(int(s), int(e)) for s, e in zip(starts, ends, strict=True)}

    def ring1(self) -> sparse.csr_matrix:
        """Gi* weights within each force (built once)."""
        if self._ring1 is None:
            self._ring1 = ring1_matrix(self.cells, self.neighbours_ring1, areas=self.force)
        return self._ring1

    @classmethod
    def from_arrow(cls, counts, cells: pa.Table, groups, coverage: pa.Table | None = None, months=None,
                   value: str = "incident_count") -> CellMonths:
        """Lay out ``counts`` (a pyarrow Table, or a pyarrow Dataset read one group at a time with only the
        columns needed) over the cells of ``cells`` (``dim_cells``: h3_cell, force, optionally neighbours_ring1).

        Months run from the first to the last month with data (counts, and the ledger when given), gaps included,
        unless ``months`` fixes them. Raises ValueError on missing columns, duplicate cells or bad counts.
        """
        groups = list(dict.fromkeys(groups))
        missing = {"h3_cell", "force"} - set(cells.column_names)
        if missing:
            raise ValueError(f"dim_cells lacks columns {sorted(missing)}")
        frame = pd.DataFrame({"h3_cell": _strings(cells["h3_cell"]).to_numpy(zero_copy_only=False),
                              "force": _strings(cells["force"]).to_numpy(zero_copy_only=False)})
        if "neighbours_ring1" in cells.column_names:
            frame["neighbours_ring1"] = cells["neighbours_ring1"].to_numpy(zero_copy_only=False)
        if frame["h3_cell"].duplicated().any():
            raise ValueError(f"dim_cells lists {int(frame['h3_cell'].duplicated().sum())} cells more than once")
        frame = frame.sort_values(["force", "h3_cell"], kind="stable").reset_index(drop=True)
        cell_ids = frame["h3_cell"].to_numpy(dtype=object)
        forces = sorted(frame["force"].unique())
        cell_force = np.searchsorted(forces, frame["force"].to_numpy(dtype=object))

        columns = [*COUNT_COLUMNS, value]
        parts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]] = {}
        delivered: set[tuple[int, str]] = set()
        unmatched = 0
        for group in groups:
            table = (counts.to_table(columns=columns, filter=pc.field("forecast_group") == group)
                     if hasattr(counts, "to_table") else counts.filter(pc.equal(counts["forecast_group"], group)))
            absent = set(columns) - set(table.column_names)
            if absent:
                raise ValueError(f"fct_cell_month_counts lacks columns {sorted(absent)}")
            vals = table[value].to_numpy(zero_copy_only=False).astype(float) if table.num_rows else np.empty(0)
            if np.isnan(vals).any() or (vals < 0).any():
                raise ValueError(f"{value} of group {group!r} has null or negative counts")
            labels = [m for m in pc.unique(_strings(table["month"]).combine_chunks()).to_pylist() if m]
            month = _codes(table["month"], labels)
            force = _codes(table["force"], forces)
            known = (force >= 0) & (month >= 0)
            for code in np.unique(force[known] * max(len(labels), 1) + month[known]):
                delivered.add((int(code) // len(labels), labels[int(code) % len(labels)]))
            row = _codes(table["h3_cell"], cell_ids)
            ok = known & (row >= 0)
            ok[ok] = cell_force[row[ok]] == force[ok]
            unmatched += int((~ok).sum())
            parts[group] = (row[ok], month[ok], vals[ok], labels)
            del table
        month_labels = {m for *_, labels in parts.values() for m in labels}
        if coverage is not None and coverage.num_rows:
            good = coverage.filter(pc.is_in(coverage["status"], value_set=pa.array(OBSERVED_STATUSES)))
            index = {f: i for i, f in enumerate(forces)}
            delivered = {(index[f], m) for f, m in zip(_strings(good["force"]).to_pylist(),
                                                        _strings(good["month"]).to_pylist(), strict=True)
                         if f in index}
            month_labels.update(m for m in _strings(coverage["month"]).to_pylist() if m)
        if months is not None:
            axis = sorted(dict.fromkeys(months))
        elif month_labels:
            axis = month_range(min(month_labels), max(month_labels))
        else:
            raise ValueError("no months: fct_cell_month_counts has no rows for these groups and there is no ledger")
        position = {m: t for t, m in enumerate(axis)}
        force_obs = np.zeros((len(forces), len(axis)), dtype=bool)
        for f, m in delivered:
            if m in position:
                force_obs[f, position[m]] = True
        observed = force_obs[cell_force]

        n, n_months = len(cell_ids), len(axis)
        mats = {}
        for group, (row, month, vals, labels) in parts.items():
            to_axis = np.array([position.get(m, -1) for m in labels], dtype=np.int64)
            t = to_axis[month] if labels else np.empty(0, dtype=np.int64)
            inside = t >= 0
            # As floats even when the group has no rows at all (bincount of nothing is integer, which NaN cannot mark).
            m = np.bincount(row[inside] * n_months + t[inside], weights=vals[inside],
                            minlength=n * n_months).reshape(n, n_months).astype(float)
            m[~observed] = np.nan
            mats[group] = m
        ring = frame["neighbours_ring1"].to_numpy(dtype=object) if "neighbours_ring1" in frame else None
        return cls(cells=cell_ids, force=np.asarray(forces, dtype=object)[cell_force], months=axis, counts=mats,
                   observed=observed, neighbours_ring1=ring, unmatched_rows=unmatched)

    @classmethod
    def from_frames(cls, counts: pd.DataFrame, cells: pd.DataFrame, groups, coverage: pd.DataFrame | None = None,
                    months=None, value: str = "incident_count") -> CellMonths:
        """:meth:`from_arrow` for pandas frames (``coverage``: the ledger's force, month and status columns)."""
        keep = [c for c in ("h3_cell", "force", "neighbours_ring1") if c in cells]
        cov = None if coverage is None else pa.Table.from_pandas(
            coverage[["force", "month", "status"]].astype(str), preserve_index=False)
        return cls.from_arrow(pa.Table.from_pandas(counts[[*COUNT_COLUMNS, value]], preserve_index=False),
                              pa.Table.from_pandas(cells[keep], preserve_index=False), groups, cov, months, value)
