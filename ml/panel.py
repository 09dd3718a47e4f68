"""A dense cells x months count matrix per forecast group: the one shape every forecaster here reads.

Built from two gold tables, ``fct_cell_month_counts`` (zero-filled counts per cell, month and forecast group) and
``dim_cells`` (the study area: centres, areas, H3 neighbour rings, LSOA). Rows are cells in a fixed, sorted order;
columns are contiguous calendar months. Month index ``t`` is the column a forecaster predicts from columns ``< t``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy import sparse

GROUPS = ("all_crime", "asb", "violence", "theft", "weapons")

# Derived objects (kernel matrices, aligned context) are cached per panel without keeping panels alive.
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def month_add(month: str, n: int) -> str:
    """The 'YYYY-MM' label ``n`` months after ``month`` (negative ``n`` goes back)."""
    y, m = int(month[:4]), int(month[5:7])
    k = y * 12 + (m - 1) + n
    return f"{k // 12:04d}-{k % 12 + 1:02d}"


def _month_number(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def _adjacency(cells: np.ndarray, neighbour_lists: pd.Series) -> sparse.csr_matrix:
    """Row i has a 1 in column j when cell j is listed as i's neighbour; cells outside the panel are dropped."""
    pos = pd.Series(np.arange(len(cells)), index=cells)
    exploded = neighbour_lists.fillna("").str.split(",").explode()
    rows = pos.loc[exploded.index].to_numpy() if len(exploded) else np.empty(0, int)
    cols = pd.Series(exploded.to_numpy()).map(pos)
    keep = cols.notna().to_numpy()
    n = len(cells)
    return sparse.csr_matrix(
        (np.ones(keep.sum()), (rows[keep], cols[keep].astype(int).to_numpy())), shape=(n, n)
    )


@dataclass(eq=False)
class Panel:
    """Counts of one study area (optionally one force): ``counts[group]`` is an (n_cells, n_months) float array.

    ``ring1`` / ``ring2`` are sparse (n_cells, n_cells) adjacency matrices of the H3 cells exactly one and exactly
    two steps away (``grid_ring``), restricted to the panel, so ``ring1 @ counts[g][:, t]`` is the neighbour sum.
    ``xy`` holds cell centres in metres on the British National Grid (EPSG:27700) for distance-based methods.
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
    dropped_months: list[str] = field(default_factory=list)

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

    def cache(self) -> dict:
        """A per-panel dict for derived objects that are costly to rebuild (kernels, aligned context)."""
        return _CACHE.setdefault(self, {})

    @classmethod
    def from_frames(cls, counts: pd.DataFrame, cells: pd.DataFrame, force: str | None = None) -> Panel:
        """Pivot ``fct_cell_month_counts`` into dense matrices over the cells of ``dim_cells``.

        With several forces the panel keeps only the months every force has published (a force's missing month is
        unknown, not zero); those left out are listed in ``dropped_months``. Raises ValueError for an unknown
        force, an empty panel or months that are not contiguous.
        """
        if force is not None:
            known = set(cells["force"].unique())
            if force not in known:
                raise ValueError(f"unknown force {force!r}; dim_cells has {sorted(known)}")
            cells = cells[cells["force"] == force]
            counts = counts[counts["force"] == force]
        cells = cells.drop_duplicates("h3_cell").sort_values("h3_cell").reset_index(drop=True)
        counts = counts[counts["h3_cell"].isin(cells["h3_cell"])]
        if cells.empty or counts.empty:
            raise ValueError(f"empty panel: no cells or no counts (force={force!r})")
        unknown_groups = set(counts["forecast_group"].unique()) - set(GROUPS)
        if unknown_groups:
            raise ValueError(f"unknown forecast groups in counts: {sorted(unknown_groups)}")

        per_force = counts.groupby("force")["month"].unique()
        all_months = sorted(set(counts["month"].unique()))
        months = sorted(set.intersection(*(set(m) for m in per_force)))
        if not months:
            raise ValueError("empty panel: the forces share no month")
        numbers = np.array([_month_number(m) for m in months])
        if np.any(np.diff(numbers) != 1):
            gaps = [
                f"{a}->{b}" for a, b, d in zip(months, months[1:], np.diff(numbers), strict=False) if d != 1
            ]
            raise ValueError(f"months are not contiguous: gaps at {', '.join(gaps)}")

        cell_ids = cells["h3_cell"].to_numpy()
        counts = counts[counts["month"].isin(months)]
        row = pd.Index(cell_ids).get_indexer(counts["h3_cell"])
        col = pd.Index(months).get_indexer(counts["month"])
        values = counts["incident_count"].to_numpy(dtype=float)
        mats = {}
        for g in GROUPS:
            sel = (counts["forecast_group"] == g).to_numpy()
            if not sel.any():
                continue
            m = np.zeros((len(cell_ids), len(months)))
            np.add.at(m, (row[sel], col[sel]), values[sel])
            mats[g] = m

        to_bng = Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)
        x, y = to_bng.transform(
            cells["centre_longitude"].to_numpy(float), cells["centre_latitude"].to_numpy(float)
        )
        indexed = cells.set_index("h3_cell")
        return cls(
            cells=cell_ids,
            months=months,
            counts=mats,
            ring1=_adjacency(cell_ids, indexed["neighbours_ring1"]),
            ring2=_adjacency(cell_ids, indexed["neighbours_ring2"]),
            xy=np.column_stack([x, y]),
            area_km2=cells["area_km2"].to_numpy(float),
            force=cells["force"].to_numpy(),
            lsoa_code=cells["lsoa_code"].astype(object).where(cells["lsoa_code"].notna(), None).to_numpy(),
            dropped_months=[m for m in all_months if m not in set(months)],
        )
