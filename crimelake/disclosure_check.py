"""An audit of published tables that shares no code with the disclosure control that made them.

`crimelake.disclosure.protect` promises three things of every table it returns; this module tests each promise on
the rows as they were written, so a fault in `protect` (or in what runs after it) shows here instead of being
re-checked by the code that made it:
- no record-level column;
- every published count is null (suppressed), zero, or at least the threshold, and a multiple of the rounding base;
  a value flagged suppressed is not published;
- no suppressed value can be recovered by differencing: given a published total and its published parts, the
  values a suppressed part could hold (every published value being anywhere its rounding allows) are more than one.

Each finding is one offending row: its keys, the column, the published value and the rule it breaks.
"""

from __future__ import annotations

import math

import pandas as pd

# Identifying columns no published table may hold, stated here on their own rather than imported from the code
# under audit.
RECORD_LEVEL = frozenset({"incident_id", "record_id", "crime_id", "crime_ref", "incident_number",
                          "case_reference", "_source_file", "_source_sha256", "_source_line", "_ingest_run_id",
                          "longitude", "latitude", "wgs84_lon", "wgs84_lat"})


def _keys(row: pd.Series, keys: list[str]) -> dict:
    return {k: (None if pd.isna(row[k]) else str(row[k])) for k in keys}


def rounding_range(published: float, base: int) -> tuple[int, int]:
    """The true counts that round (to nearest, halves up) to `published`: base 5 -> published-2..published+2."""
    half = base / 2
    return max(0, math.ceil(published - half)), math.ceil(published + half) - 1


def _published_range(published: float, base: int, min_count: int) -> tuple[int, int]:
    """The true counts a published (not suppressed) value can stand for: its rounding range without the small
    counts, which would have been suppressed."""
    lo, hi = rounding_range(published, base)
    if 0 < lo < min_count:
        lo = min_count if hi >= min_count else lo
    if lo == 0 and hi < min_count:
        hi = 0
    return lo, hi


def audit_values(frame: pd.DataFrame, count_columns: list[str], keys: list[str], *, min_count: int,
                 base: int) -> list[dict]:
    """Every row and column of `frame` whose published count breaks the threshold or rounding rule."""
    found = [{"rule": f"record-level column {c} is published"} for c in sorted(RECORD_LEVEL & set(frame.columns))]
    for col in count_columns:
        flag = f"{col}_suppressed"
        values = pd.to_numeric(frame[col], errors="coerce").astype(float)
        present = values.notna()
        rules = {
            f"published count below the threshold {min_count}": present & (values > 0) & (values < min_count),
            "negative count": present & (values < 0),
            f"count not a multiple of {base}": present & ((values % base) != 0),
        }
        if flag in frame.columns:
            rules["suppressed value published"] = present & frame[flag].fillna(False).astype(bool)
        for rule, mask in rules.items():
            for _, row in frame[mask].iterrows():
                found.append({**_keys(row, keys), "column": col, "published": row[col], "rule": rule})
    return found


def recoverable(totals: pd.DataFrame, parts: pd.DataFrame, by: list[str], part_keys: list[str], column: str, *,
                min_count: int, base: int) -> list[dict]:
    """Suppressed parts whose value a published total minus its published parts pins to one value.

    `totals` has one row per `by`; `parts` many (told apart by `part_keys`), summing to their total before
    rounding. A suppressed part is null; it holds 1..min_count-1. Every published value v stands for any count in
    `rounding_range(v)`."""
    possible = max(0, min_count - 1)
    if possible <= 1 or totals.empty or parts.empty:
        return []  # a single possible suppressed value is the threshold's doing, not differencing's
    shown_totals = totals.dropna(subset=[column])
    # Only a published total with at least one suppressed part can give one away: look at those groups alone (a
    # national month has hundreds of thousands of groups, nearly all without either).
    hidden_keys = parts.loc[parts[column].isna(), by].drop_duplicates()
    candidates = shown_totals[by].merge(hidden_keys, on=by)
    if candidates.empty:
        return []
    shown_totals = shown_totals.merge(candidates, on=by)
    parts = parts.merge(candidates, on=by)
    total_of = {tuple(str(v) for v in key): float(v) for key, v in
                zip(shown_totals[by].itertuples(index=False, name=None), shown_totals[column], strict=True)}
    found = []
    for key, group in parts.groupby(by, observed=True, dropna=False):
        key = tuple(str(v) for v in (key if isinstance(key, tuple) else (key,)))
        if key not in total_of:
            continue
        hidden = group[group[column].isna()]
        if hidden.empty:
            continue
        t_lo, t_hi = rounding_range(float(total_of[key]), base)
        shown = [_published_range(float(v), base, min_count) for v in group[column].dropna()]
        lo = t_lo - sum(hi for _, hi in shown)
        hi = t_hi - sum(lo_ for lo_, _ in shown)
        k = len(hidden)
        # One hidden part, the others anywhere from 1 to min_count-1 each.
        low = max(1, lo - (k - 1) * possible)
        high = min(possible, hi - (k - 1))
        if low == high:
            for _, row in hidden.iterrows():
                found.append({**dict(zip(by, key, strict=True)), **_keys(row, part_keys),
                              "column": column, "published": None,
                              "rule": f"suppressed value recoverable as {low} from the published total "
                                      f"{total_of[key]:g} minus its published parts"})
    return found
