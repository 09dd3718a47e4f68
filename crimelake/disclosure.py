"""Statistical disclosure control for everything meant for the public.

Published counts are aggregates only (never record-level rows) and are protected in two ways, as the Office for
National Statistics does for small-area crime and social care tables:
- counts below the threshold (default 5, `CRIMELAKE_DISCLOSURE_THRESHOLD`) are suppressed (published as null,
  with a `<column>_suppressed` flag);
- every other published count, totals included, is rounded to the nearest multiple of the rounding base
  (default 5). Totals are rounded from their true values, not summed from rounded parts, so subtracting the
  published parts from a published total leaves a range of at least five possible values for a suppressed cell:
  differencing neighbouring totals cannot recover it.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

# Published cells are H3 resolution 7 (about 5 km2): coarse enough that most published counts are not small.
PUBLIC_H3_RESOLUTION = 7

RECORD_LEVEL_COLUMNS = {"incident_id", "record_id", "crime_id", "crime_ref", "incident_number", "case_reference",
                        "_source_file", "_source_sha256", "_source_line", "_ingest_run_id", "longitude", "latitude"}


def public_cells(cells: pd.Series) -> pd.Series:
    """Each H3 cell's parent on the public grid (resolution PUBLIC_H3_RESOLUTION)."""
    import h3

    parents = {c: h3.cell_to_parent(c, PUBLIC_H3_RESOLUTION) for c in cells.unique()}
    return cells.astype(str).map(parents)


def forces_covering(frame: pd.DataFrame, cell_column: str, cells: pd.DataFrame | None = None) -> pd.Series:
    """For every cell of `cell_column`, the forces found in it as one sorted, comma-separated string: how a public
    cell shared by several forces names them.

    `cells` (the study area: finer H3 cells with the force each belongs to, as gold/dim_cells holds them) names
    every force whose area reaches into a public cell, whatever the months in `frame` hold, so a month published
    on its own names a cell's forces as a rebuild of every month does. The forces in `frame` count as well, so a
    row recorded outside the study area still names its force."""
    pairs = frame[[cell_column, "force"]].astype(str)
    if cells is not None and not cells.empty:
        area = pd.DataFrame({cell_column: public_cells(cells["h3_cell"]).astype(str),
                             "force": cells["force"].astype(str)})
        pairs = pd.concat([pairs, area[area[cell_column].isin(set(pairs[cell_column]))]])
    pairs = pairs.drop_duplicates().sort_values("force")
    return frame[cell_column].astype(str).map(pairs.groupby(cell_column)["force"].agg(",".join))


def threshold() -> int:
    return int(os.environ.get("CRIMELAKE_DISCLOSURE_THRESHOLD", "5"))


def round_to_base(values: np.ndarray, base: int = 5) -> np.ndarray:
    """Nearest multiple of `base`, halves rounded up (7.5 -> 10)."""
    return (np.floor(np.asarray(values, dtype=float) / base + 0.5) * base).astype(float)


def protect(frame: pd.DataFrame, count_columns: list[str], *, min_count: int | None = None,
            base: int = 5) -> pd.DataFrame:
    """Suppress counts below `min_count` and round the rest to `base`; refuses record-level columns."""
    leaked = sorted(RECORD_LEVEL_COLUMNS & set(frame.columns))
    if leaked:
        raise ValueError(f"record-level columns {leaked} cannot be published")
    floor = threshold() if min_count is None else min_count
    out = frame.copy()
    for col in count_columns:
        raw = out[col].astype(float)
        rounded = pd.Series(round_to_base(raw.fillna(0).to_numpy(), base), index=out.index).where(raw.notna())
        # Small counts, and counts that rounding would publish below the threshold (7 -> 5 with a threshold of 7).
        small = raw.notna() & (raw > 0) & ((raw < floor) | (rounded < floor))
        out[col] = rounded.mask(small).astype("Int64")
        out[f"{col}_suppressed"] = small
    return out


def check_public(frame: pd.DataFrame, count_columns: list[str], *, min_count: int | None = None,
                 base: int = 5) -> list[str]:
    """Every way a frame breaks the disclosure rules (an empty list when it is safe to publish)."""
    floor = threshold() if min_count is None else min_count
    problems = [f"record-level column {c}" for c in sorted(RECORD_LEVEL_COLUMNS & set(frame.columns))]
    for col in count_columns:
        v = frame[col].dropna().astype(float)
        if ((v > 0) & (v < floor)).any():
            problems.append(f"{col}: {int(((v > 0) & (v < floor)).sum())} counts below {floor}")
        if (v % base != 0).any():
            problems.append(f"{col}: counts not rounded to {base}")
    return problems


def suppress_pinned_totals(totals: pd.DataFrame, parts: pd.DataFrame, by: list[str], column: str, *,
                           min_count: int | None = None, base: int = 5) -> pd.DataFrame:
    """Secondary suppression: withhold a published total whose value, less its published parts, would leave a
    suppressed part only one possible value.

    Both frames are `protect()`ed; `parts` sum to the total of their `by` group before rounding. A published value
    v stands for any true count that rounds to it (and, for a part, is not below the threshold); a suppressed part
    holds 1 to threshold - 1. With k suppressed parts, one of them lies between max(1, total_low - parts_high -
    (k - 1)(threshold - 1)) and min(threshold - 1, total_high - parts_low - (k - 1)); when that leaves one value
    or none, the total is suppressed too (published null, flagged)."""
    floor = threshold() if min_count is None else min_count
    most = floor - 1
    if most <= 1 or totals.empty or parts.empty:
        return totals
    half = base / 2
    p = parts[[*by, column]].copy()
    v = p[column].astype("Float64")
    hidden = v.isna()
    shown = v.fillna(0).astype(float).to_numpy()
    lo = np.maximum(np.ceil(shown - half), 0)
    lo = np.where((lo > 0) & (lo < floor), floor, lo)
    hi = np.ceil(shown + half) - 1
    hi = np.where(shown == 0, 0, hi)
    p = p.assign(_lo=np.where(hidden, 0, lo), _hi=np.where(hidden, 0, hi), _k=hidden.to_numpy().astype(int))
    g = p.groupby(by, observed=True, dropna=False)[["_lo", "_hi", "_k"]].sum().reset_index()
    key = [c for c in by]
    t = totals.reset_index(drop=True)
    merged = t[key].merge(g, on=key, how="left")
    total = t[column].astype("Float64")
    published = total.notna().to_numpy() & (merged["_k"].fillna(0).to_numpy() > 0)
    tv = total.fillna(0).astype(float).to_numpy()
    t_lo, t_hi = np.maximum(np.ceil(tv - half), 0), np.ceil(tv + half) - 1
    k = merged["_k"].fillna(0).to_numpy()
    low = np.maximum(1, t_lo - merged["_hi"].fillna(0).to_numpy() - (k - 1) * most)
    high = np.minimum(most, t_hi - merged["_lo"].fillna(0).to_numpy() - (k - 1))
    pinned = published & (low >= high)
    out = t.copy()
    out[column] = total.mask(pinned).astype("Int64")
    flag = f"{column}_suppressed"
    out[flag] = (out[flag] if flag in out.columns else False) | pinned
    return out
