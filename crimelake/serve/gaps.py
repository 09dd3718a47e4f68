"""Which forces have no data (or only part of it) for a month, so the map never shows a gap as zero crime.

The coverage ledger (gold/coverage: one row per source, force and month with a status) is the authority: a
force-month is observed when at least one of its sources is `complete`; otherwise it is `partial` when a source
delivered part of its usual volume, and `missing` when none delivered anything. A lake built before the ledger
existed falls back on the counts themselves: a force with no rows in a month between its first month and the
latest month has no data that month.
"""

from __future__ import annotations

import pandas as pd

from crimelake.reference.forces import FORCES

FORCE_NAMES = {f.slug: f.name for f in FORCES}
COVERAGE_COLUMNS = ["source", "force", "month", "status", "volume_ratio"]
STATUS_ORDER = {"missing": 0, "partial": 1}


def entry(force: str, status: str, volume_ratio: float | None = None, note: str | None = None) -> dict:
    """One force's gap in a month, as the API shows it; `note` is the reason in words."""
    ratio = None if volume_ratio is None or pd.isna(volume_ratio) else round(float(volume_ratio), 3)
    if note is None:
        note = ("not delivered" if status == "missing" else "part of the month delivered" if ratio is None
                else f"{round(ratio * 100)}% of usual volume")
    return {"force": force, "name": FORCE_NAMES.get(force, force), "status": status, "volume_ratio": ratio,
            "note": note}


def _by_month(entries: list[tuple[str, dict]]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for month, e in sorted(entries, key=lambda x: (x[0], STATUS_ORDER[x[1]["status"]], x[1]["name"])):
        out.setdefault(month, []).append(e)
    return out


def from_coverage(coverage: pd.DataFrame) -> dict[str, list[dict]]:
    """Month -> the forces whose force-month is missing or partial in the coverage ledger (complete in no
    source), missing first, then by name. A partial force-month carries the best volume ratio of its sources."""
    missing = sorted(set(COVERAGE_COLUMNS) - set(coverage.columns))
    if missing:
        raise ValueError(f"gold/coverage lacks the columns {missing}")
    if coverage.empty:
        return {}
    frame = coverage[COVERAGE_COLUMNS].astype({"force": str, "month": str, "status": str})
    entries = []
    for (force, month), g in frame.groupby(["force", "month"], sort=False):
        statuses = set(g["status"])
        if "complete" in statuses:
            continue
        if "partial" in statuses:
            ratio = g.loc[g["status"] == "partial", "volume_ratio"].max()
            entries.append((month, entry(force, "partial", ratio)))
        elif "missing" in statuses:
            entries.append((month, entry(force, "missing")))
    return _by_month(entries)


def from_counts(counts: pd.DataFrame) -> dict[str, list[dict]]:
    """Month -> the forces with no count rows that month, from each force's first month with rows to the latest
    month of any force (the span the coverage ledger expects)."""
    if counts.empty:
        return {}
    pairs = counts.groupby(["force", "month"], observed=True).size().index
    present = pd.DataFrame({"force": pairs.get_level_values(0).astype(str),
                            "month": pairs.get_level_values(1).astype(str)})
    months = sorted(present["month"].unique())
    entries = []
    for force, g in present.groupby("force"):
        seen = set(g["month"])
        entries += [(m, entry(force, "missing", note="no records")) for m in months if m >= min(seen) and m not in seen]
    return _by_month(entries)
