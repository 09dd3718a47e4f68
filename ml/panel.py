"""A cells x months count matrix per forecast group, with a mask of what was observed: the one shape every
forecaster here reads.

Built from ``fct_cell_month_counts`` (sparse counts per cell, month and forecast group: a cell with no row in a month
its force delivered had no crime), ``dim_cells`` (the study area: centres, areas, H3 neighbour rings, LSOA) and,
when there is one, the coverage ledger (``gold/coverage``: which force-months arrived whole). Rows are cells in a
fixed, sorted order; columns are every calendar month from the first to the last with data, gaps included. Month
index ``t`` is the column a forecaster predicts from columns ``< t``.

A force-month that was not delivered, or arrived only in part, is *missing*: its cells hold NaN, never 0, and
``observed`` is False there, so one absent file neither stops a forecast nor reads as a fall in crime.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy import sparse

from ml.cell_months import OBSERVED_STATUSES, month_add, month_range

GROUPS = ("all_crime", "asb", "violence", "theft", "weapons")
__all__ = ["GROUPS", "OBSERVED_STATUSES", "Panel", "month_add", "month_range", "observed_force_months"]

# Derived objects (kernel matrices, aligned context) are cached per panel without keeping panels alive.
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _h3_ids(text: str, n: int) -> np.ndarray | None:
    """``n`` H3 ids of 15 hex digits, each followed by one separator character, parsed at once into integers (the
    id's own value, as ``h3.str_to_int`` gives); None when the text is not laid out that way. Each id is read as
    16 hex digits (a leading 0 added) by ``bytes.fromhex``, which skips the spaces put between ids."""
    if len(text) != 16 * n or not text.isascii():
        return None
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(n, 16)
    if not (raw[:, 15] == raw[0, 15]).all() or chr(raw[0, 15]) not in ",; ":
        return None
    padded = np.empty((n, 18), dtype=np.uint8)
    padded[:, 0] = ord(" ")
    padded[:, 1] = ord("0")
    padded[:, 2:17] = raw[:, :15]
    padded[:, 17] = ord(" ")
    try:
        packed = bytes.fromhex(padded.tobytes().decode("ascii"))
    except ValueError:  # a character that is not a hex digit
        return None
    return np.frombuffer(packed, dtype=">u8").astype(np.uint64)


def _adjacency(cells: np.ndarray, neighbour_lists: pd.Series) -> sparse.csr_matrix:
    """Row i has a 1 in column j when cell j is listed as i's neighbour; cells outside the panel are dropped."""
    n = len(cells)
    lists = neighbour_lists.fillna("").astype(str)
    lengths = lists.str.len().to_numpy()
    per_cell = np.where(lengths > 0, (lengths + 1) // 16, 0)
    ids = _h3_ids(",".join(cells) + ",", n)
    neighbours = _h3_ids(",".join(lists[lengths > 0]) + ",", int(per_cell.sum()))
    if ids is None or neighbours is None or (per_cell * 16 - 1 != lengths)[lengths > 0].any():
        return _adjacency_by_name(cells, neighbour_lists)
    # Cells are sorted by id text, and ids of one length sort the same as their values.
    pos = np.searchsorted(ids, neighbours)
    pos = np.minimum(pos, n - 1)
    found = ids[pos] == neighbours
    rows = np.repeat(np.arange(n), per_cell)
    return sparse.csr_matrix((np.ones(found.sum()), (rows[found], pos[found])), shape=(n, n))


def _adjacency_by_name(cells: np.ndarray, neighbour_lists: pd.Series) -> sparse.csr_matrix:
    """``_adjacency`` for ids of any form, through a name lookup (slower)."""
    pos = pd.Series(np.arange(len(cells)), index=cells)
    exploded = neighbour_lists.fillna("").str.split(",").explode()
    rows = pos.loc[exploded.index].to_numpy() if len(exploded) else np.empty(0, int)
    cols = pd.Series(exploded.to_numpy()).map(pos)
    keep = cols.notna().to_numpy()
    n = len(cells)
    return sparse.csr_matrix(
        (np.ones(keep.sum()), (rows[keep], cols[keep].astype(int).to_numpy())), shape=(n, n)
    )


def observed_force_months(coverage: pd.DataFrame) -> pd.DataFrame:
    """(force, month) pairs whose counts can be trusted: at least one incident source delivered the force-month
    whole (status ``complete`` in the coverage ledger). Missing and partial force-months are left out."""
    ok = coverage[coverage["status"].isin(OBSERVED_STATUSES)]
    return ok[["force", "month"]].drop_duplicates().reset_index(drop=True)


def _positions(index: pd.Index, values: pd.Series) -> np.ndarray:
    """Positions of ``values`` in ``index`` (-1 when absent); categorical values are mapped once per category."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        pos = index.get_indexer(values.cat.categories.astype(str))
        codes = values.cat.codes.to_numpy()
        return np.where(codes >= 0, pos[codes], -1)
    return index.get_indexer(values.astype(str))


def _distinct(values: pd.Series) -> list[str]:
    """The distinct values as text; a categorical's from the categories in use, not row by row."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        used = np.unique(values.cat.codes.to_numpy())
        return [str(values.cat.categories[c]) for c in used if c >= 0]
    return [str(v) for v in values.dropna().unique()]


@dataclass(eq=False)
class Panel:
    """Counts of one study area (optionally one force): ``counts[group]`` is an (n_cells, n_months) float array,
    NaN where the cell's force-month was not observed (``observed`` False).

    ``ring1`` / ``ring2`` are sparse (n_cells, n_cells) adjacency matrices of the H3 cells exactly one and exactly
    two steps away (``grid_ring``), restricted to the panel, so ``ring1 @ counts[g][:, t]`` is the neighbour sum.
    ``xy`` holds cell centres in metres on the British National Grid (EPSG:27700) for distance-based methods.
    ``missing`` lists the (force, month) pairs masked.
    """

    cells: np.ndarray
    months: list[str]
    counts: dict[str, np.ndarray]
    ring1: sparse.csr_matrix
    ring2: sparse.csr_matrix
    xy: np.ndarray
    area_km2: np.ndarray
    force: np.ndarray
    lsoa_code: np.ndarray
    observed: np.ndarray | None = None
    missing: list[tuple[str, str]] = field(default_factory=list)
    # Per cell, the month ("YYYY-MM") whose data first named its LSOA; None when every LSOA counts as always known.
    lsoa_month: np.ndarray | None = None
    # (panel, mask of its cells) this panel was cut from by ``subset``, else None.
    parent: tuple[Panel, np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.observed is None:
            self.observed = np.ones((len(self.cells), len(self.months)), dtype=bool)

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    @property
    def n_months(self) -> int:
        return len(self.months)

    @property
    def groups(self) -> list[str]:
        return list(self.counts)

    def group_counts(self, group: str) -> np.ndarray:
        if group not in self.counts:
            raise ValueError(f"unknown forecast group {group!r}; this panel has {sorted(self.counts)}")
        return self.counts[group]

    def month_label(self, t: int) -> str:
        """Label of month index ``t``; ``t == n_months`` is the month after the last observed one."""
        if 0 <= t < self.n_months:
            return self.months[t]
        if t < 0:
            raise ValueError(f"month index {t} is before the panel's first month {self.months[0]}")
        return month_add(self.months[-1], t - self.n_months + 1)

    def observed_in(self, t: int) -> np.ndarray:
        """Cells observed in month index ``t`` (a boolean mask in cell order)."""
        return self.observed[:, t]

    def scored_months(self) -> list[int]:
        """Month indices with at least one observed cell."""
        return [t for t in range(self.n_months) if self.observed[:, t].any()]

    def first_seen(self) -> np.ndarray:
        """Per cell, the first month index with any recorded crime in any group (``n_months`` when none)."""
        cache = self.cache()
        if "first_seen" not in cache:
            any_crime = np.zeros((self.n_cells, self.n_months), dtype=bool)
            for m in self.counts.values():
                any_crime |= np.nan_to_num(m, nan=0.0) > 0
            cache["first_seen"] = np.where(any_crime.any(axis=1), any_crime.argmax(axis=1), self.n_months)
        return cache["first_seen"]

    def known_before(self, t: int) -> np.ndarray:
        """The study area as of month index ``t``: cells with any recorded crime before it (a boolean mask)."""
        return self.first_seen() < t

    def lsoa_named_before(self, t: int) -> np.ndarray:
        """Cells whose LSOA data before month index ``t`` named (a boolean mask; all True without ``lsoa_month``),
        so features for month ``t`` use no LSOA learned later."""
        if self.lsoa_month is None:
            return np.ones(self.n_cells, dtype=bool)
        cache = self.cache()
        key = ("lsoa_named_before", t)
        if key not in cache:
            cache[key] = np.asarray(self.lsoa_month, dtype="<U7") < self.month_label(t)
        return cache[key]

    def subset(self, keep: np.ndarray, n_months: int | None = None, groups: list[str] | None = None) -> Panel:
        """The panel of the cells ``keep`` (a boolean mask) and the first ``n_months`` months, optionally of some
        groups only. Rings are cut to the kept cells; distance-based baselines cut their parent's neighbour pairs
        rather than search again (``parent``)."""
        n = self.n_months if n_months is None else n_months
        idx = np.flatnonzero(keep)
        sub = Panel(
            cells=self.cells[idx], months=self.months[:n],
            counts={g: m[idx, :n] for g, m in self.counts.items() if groups is None or g in groups},
            ring1=self.ring1[idx][:, idx].tocsr(), ring2=self.ring2[idx][:, idx].tocsr(),
            xy=self.xy[idx], area_km2=self.area_km2[idx], force=self.force[idx], lsoa_code=self.lsoa_code[idx],
            observed=self.observed[idx, :n], missing=[(f, m) for f, m in self.missing if m <= self.months[n - 1]],
            lsoa_month=None if self.lsoa_month is None else self.lsoa_month[idx],
        )
        # Spatial searches (neighbour pairs for the distance-based baselines) are done once, on the parent.
        sub.parent = (self, keep)
        return sub

    def cache(self) -> dict:
        """A per-panel dict for derived objects that are costly to rebuild (kernels, aligned context)."""
        return _CACHE.setdefault(self, {})

    @classmethod
    def from_frames(cls, counts: pd.DataFrame, cells: pd.DataFrame, force: str | None = None,
                    coverage: pd.DataFrame | None = None, dtype=np.float64) -> Panel:
        """Pivot sparse ``fct_cell_month_counts`` onto the cells of ``dim_cells``, every month from the first to
        the last with data.

        ``coverage`` is the coverage ledger (columns force, month, status); a cell-month is observed when the
        cell's force has a ``complete`` source that month. Without a ledger a force-month is observed when the
        force has any count row that month. Raises ValueError for an unknown force or an empty panel.
        """
        if force is not None:
            known = set(cells["force"].unique())
            if force not in known:
                raise ValueError(f"unknown force {force!r}; dim_cells has {sorted(known)}")
            cells = cells[cells["force"] == force]
            counts = counts[counts["force"] == force]
            if coverage is not None:
                coverage = coverage[coverage["force"] == force]
        cells = cells.drop_duplicates("h3_cell").sort_values("h3_cell").reset_index(drop=True)
        cell_ids = cells["h3_cell"].to_numpy()
        cell_index = pd.Index(cell_ids)
        row = _positions(cell_index, counts["h3_cell"])
        inside = row >= 0
        if cells.empty or not inside.any():
            raise ValueError(f"empty panel: no cells or no counts (force={force!r})")
        unknown_groups = set(_distinct(counts["forecast_group"])) - set(GROUPS)
        if unknown_groups:
            raise ValueError(f"unknown forecast groups in counts: {sorted(unknown_groups)}")
        group_of = _positions(pd.Index(GROUPS), counts["forecast_group"])

        if coverage is not None and not coverage.empty:
            seen = observed_force_months(coverage)
            span = set(coverage["month"].astype(str)) | set(_distinct(counts["month"]))
        else:
            seen = pd.DataFrame({"force": counts["force"].astype(str),
                                 "month": counts["month"].astype(str)}).drop_duplicates()
            span = set(_distinct(counts["month"]))
        months = month_range(min(span), max(span))
        month_index = pd.Index(months)

        cell_force = cells["force"].astype(str).to_numpy()
        forces = pd.Index(sorted(set(cell_force)))
        force_obs = np.zeros((len(forces), len(months)), dtype=bool)
        fi = forces.get_indexer(seen["force"].astype(str))
        mi = month_index.get_indexer(seen["month"].astype(str))
        ok = (fi >= 0) & (mi >= 0)
        force_obs[fi[ok], mi[ok]] = True
        observed = force_obs[forces.get_indexer(cell_force)]

        col = _positions(month_index, counts["month"])
        values = counts["incident_count"].to_numpy(dtype=np.float64)
        mats = {}
        shape = (len(cell_ids), len(months))
        for k, g in enumerate(GROUPS):
            sel = inside & (group_of == k)
            if not sel.any():
                continue
            # Summed by flat position: a cell may have a row from more than one force in a month.
            flat = np.bincount(row[sel] * shape[1] + col[sel], weights=values[sel], minlength=shape[0] * shape[1])
            m = flat.reshape(shape).astype(dtype)
            m[~observed] = np.nan
            mats[g] = m

        to_bng = Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)
        x, y = to_bng.transform(
            cells["centre_longitude"].to_numpy(float), cells["centre_latitude"].to_numpy(float)
        )
        indexed = cells.set_index("h3_cell")
        missing = [(f, months[j]) for i, f in enumerate(forces) for j in np.flatnonzero(~force_obs[i])]
        return cls(
            cells=cell_ids,
            months=months,
            counts=mats,
            ring1=_adjacency(cell_ids, indexed["neighbours_ring1"]),
            ring2=_adjacency(cell_ids, indexed["neighbours_ring2"]),
            xy=np.column_stack([x, y]),
            area_km2=cells["area_km2"].to_numpy(float),
            force=cell_force.astype(object),
            lsoa_code=cells["lsoa_code"].astype(object).where(cells["lsoa_code"].notna(), None).to_numpy(),
            observed=observed,
            missing=missing,
            lsoa_month=_lsoa_months(cells),
        )


def _lsoa_months(cells: pd.DataFrame) -> np.ndarray | None:
    """``dim_cells.lsoa_month`` as fixed-width text ("9999-99" where no month named an LSOA), or None for a cells
    frame without the column (every LSOA then counts as known from the start)."""
    if "lsoa_month" not in cells.columns:
        return None
    return cells["lsoa_month"].astype(object).where(cells["lsoa_month"].notna(), "9999-99").to_numpy(dtype="<U7")
