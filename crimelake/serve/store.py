"""The map's view of the lake: the released version of each table it serves, kept in memory until a newer one is
released.

Gold and public tables are read at the version the newest release names (crimelake.release), so the map never
shows a mix of a run's new tables and the old ones, nor anything a run wrote before it failed; other tables (and
gold or public tables no release names yet) at their newest version. Each table and the release record are
checked at most every `refresh_seconds` (`CRIMELAKE_SERVE_REFRESH_SECONDS`, default 10), so a map left open
follows the pipeline as data arrives without re-reading unchanged tables.
Frames are read once per version with string keys as pandas categoricals (filters compare codes, not strings).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from crimelake import release
from crimelake.config import Settings
from crimelake.disclosure import PUBLIC_H3_RESOLUTION, forces_covering, protect, public_cells


@dataclass(frozen=True)
class TableInfo:
    table: str
    version: int | None
    updated_at: datetime | None


def _categorical(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for c in columns:
        if c in frame.columns:
            frame[c] = frame[c].astype("category")
    return frame


def _detail_counts(dt: DeltaTable) -> pd.DataFrame:
    ds = dt.to_pyarrow_dataset()
    table = ds.to_table(columns=["h3_cell", "force", "month", "forecast_group", "incident_count"],
                        filter=pc.field("incident_count") > 0)
    return _categorical(table.to_pandas(), ["h3_cell", "force", "month", "forecast_group"])


def _public_counts(dt: DeltaTable) -> pd.DataFrame:
    ds = dt.to_pyarrow_dataset()
    # Zero cells are left out of the map; a suppressed cell (1 to 4 offences) is kept, with no count.
    table = ds.to_table(filter=(pc.field("incident_count") > 0) | pc.field("incident_count_suppressed"))
    frame = table.to_pandas()
    if "forces" in frame.columns:
        # The all-forces table names every force a cell covers; the map reads that list where a force goes.
        frame = frame.rename(columns={"forces": "force"})
    return _categorical(frame, ["h3_cell", "force", "month", "forecast_group"])


def _published_forecasts(dt: DeltaTable) -> pd.DataFrame:
    """The champion's newest forecast per group: the latest target month, from its latest batch."""
    ds = dt.to_pyarrow_dataset()
    frame = ds.to_table(filter=pc.field("model_alias") == "champion").to_pandas()
    if frame.empty:
        return frame
    latest_target = frame.groupby("forecast_group")["target_month"].transform("max")
    frame = frame[frame["target_month"] == latest_target]
    latest_batch = frame.groupby("forecast_group")["created_at"].transform("max")
    frame = frame[frame["created_at"] == latest_batch].drop(columns=["feature_tables"])
    return _categorical(frame.reset_index(drop=True), ["h3_cell", "force", "forecast_group"])


def public_forecast(detail: pd.DataFrame, *, by_force: bool = True) -> pd.DataFrame:
    """Forecasts summed to the public resolution, ranked again there, with the disclosure rules applied.

    `by_force` keeps one row per force in a cell that several forces cover (for a view of one force); without it
    a cell is one total across forces, its `force` naming them all, comma-separated (for the all-forces view).
    The hot spot flags are set on the unrounded sums (top 1% and 5% of the cells with a forecast, at least one),
    the published count is protected as every public count is.
    """
    if detail.empty:
        return detail
    frame = detail.assign(h3_cell=public_cells(detail["h3_cell"]), force=detail["force"].astype(str),
                          forecast_group=detail["forecast_group"].astype(str))
    if not by_force:
        frame["force"] = forces_covering(frame, "h3_cell")
    keys = ["forecast_group", "h3_cell", "force", "target_month", "model_name", "model_version"]
    out = frame.groupby(keys, observed=True, dropna=False)["predicted_count"].sum().reset_index()
    parts = []
    for _, g in out.groupby("forecast_group"):
        g = g.sort_values(["predicted_count", "h3_cell"], ascending=[False, True]).reset_index(drop=True)
        n = len(g)
        rank = np.arange(1, n + 1)
        g["rank"] = rank
        g["percentile"] = 1.0 - (rank - 1) / n
        g["hotspot_1pct"] = rank <= max(1, -(-n // 100))
        g["hotspot_5pct"] = rank <= max(1, -(-n * 5 // 100))
        parts.append(g)
    out = pd.concat(parts, ignore_index=True)
    out["h3_resolution"] = PUBLIC_H3_RESOLUTION
    out = protect(out, ["predicted_count"])
    return _categorical(out, ["h3_cell", "force", "forecast_group"])


def _emerging(dt: DeltaTable) -> pd.DataFrame:
    return _categorical(dt.to_pandas(), ["h3_cell", "force", "forecast_group", "category"])


def _plain(dt: DeltaTable) -> pd.DataFrame:
    return dt.to_pandas()


def _coverage(dt: DeltaTable) -> pd.DataFrame:
    from crimelake.serve.gaps import COVERAGE_COLUMNS

    return dt.to_pyarrow_dataset().to_table(columns=COVERAGE_COLUMNS).to_pandas()


# Table name (relative to the lake) -> how its newest version is turned into the frame the API filters.
LOADERS: dict[str, Callable[[DeltaTable], pd.DataFrame]] = {
    "gold/fct_cell_month_counts": _detail_counts,
    "gold/dim_cells": _plain,
    "gold/dim_forces": _plain,
    "gold/coverage": _coverage,
    "public/cell_month_counts": _public_counts,
    "public/cell_month_counts_all_forces": _public_counts,
    "public/force_month_totals": _plain,
    "ml/predictions": _published_forecasts,
    "ml/emerging_hotspots": _emerging,
}

LANDING_TABLES = ("bronze/police_uk/street", "bronze/police_uk/outcomes", "bronze/police_uk/stop_and_search",
                  "bronze/force_rms_ho/crimes", "bronze/force_rms_text/crimes",
                  "bronze/la_reports/reports", "bronze/social_care/indicators")


def _committed_at(dt: DeltaTable) -> datetime | None:
    v = dt.version()
    stamp = next((e.get("timestamp") for e in dt.history() if e.get("version") == v), None)
    return None if stamp is None else datetime.fromtimestamp(stamp / 1000, UTC)


class LakeView:
    """Thread-safe, version-aware cache of the served tables."""

    def __init__(self, settings: Settings, refresh_seconds: float | None = None):
        self.settings = settings
        self.refresh_seconds = (float(os.environ.get("CRIMELAKE_SERVE_REFRESH_SECONDS", "10"))
                                if refresh_seconds is None else refresh_seconds)
        self._lock = threading.RLock()
        self._tables: dict[str, DeltaTable] = {}
        self._checked: dict[str, float] = {}
        self._frames: dict[tuple[str, Hashable], tuple[int, object]] = {}
        self._release: tuple[float, release.Release | None] | None = None

    def _released(self, now: float) -> release.Release | None:
        """The newest release, re-read at most every refresh_seconds."""
        if self._release is None or now - self._release[0] >= self.refresh_seconds:
            self._release = (now, release.latest(self.settings))
        return self._release[1]

    def _delta(self, name: str) -> DeltaTable | None:
        """The table at the version readers see (see the module docstring), re-checked at most every
        refresh_seconds."""
        now = time.monotonic()
        dt = self._tables.get(name)
        if dt is not None and now - self._checked.get(name, 0) < self.refresh_seconds:
            return dt
        try:
            pinned = release.version_to_read(self.settings, name, self._released(now))
            if dt is None:
                dt = DeltaTable(str(self.settings.lake / name), version=pinned)
            elif pinned is None:
                dt.update_incremental()
            elif dt.version() != pinned:
                dt.load_as_version(pinned)
        except TableNotFoundError:
            dt = None
        if dt is None:
            self._tables.pop(name, None)
        else:
            self._tables[name] = dt
        self._checked[name] = now
        return dt

    def info(self, name: str) -> TableInfo:
        """The version read and when it was committed (read from the log once per version)."""
        with self._lock:
            dt = self._delta(name)
            if dt is None:
                return TableInfo(name, None, None)
            committed = self.derived(name, "committed_at", _committed_at)
            return TableInfo(name, dt.version(), committed)

    def dataset(self, name: str):
        """The table (at the version read, see `_delta`) as a pyarrow dataset, for filtered reads of tables too big to keep (None
        while the table does not exist)."""
        with self._lock:
            dt = self._delta(name)
            return None if dt is None else dt.to_pyarrow_dataset()

    def frame(self, name: str) -> pd.DataFrame:
        """The table (at the version read) as a frame (empty with no columns when the table does not exist yet)."""
        return self.derived(name, "frame", LOADERS[name], default=pd.DataFrame())

    def derived(self, name: str, key: Hashable, build: Callable[[DeltaTable], object],
                default: object = None) -> object:
        """Anything computed from one table, rebuilt only when the table gets a new version; `default` while
        the table does not exist."""
        with self._lock:
            dt = self._delta(name)
            if dt is None:
                return default
            cached = self._frames.get((name, key))
            if cached is not None and cached[0] == dt.version():
                return cached[1]
            value = build(dt)
            self._frames[(name, key)] = (dt.version(), value)
            return value

    def landed_at(self) -> datetime | None:
        """When data last landed: the newest commit to any bronze table."""
        times = [i.updated_at for i in (self.info(t) for t in LANDING_TABLES) if i.updated_at]
        return max(times) if times else None
