"""The map's layers as GeoJSON and JSON, scoped to what the caller may see.

Pure query logic over a LakeView: no web framework here, so the rules (who sees which resolution, what is
suppressed, how big a request may be) are tested directly and the web app only translates errors to statuses.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from dataclasses import dataclass

import h3
import numpy as np
import pandas as pd
from pyproj import Geod

from crimelake.disclosure import PUBLIC_H3_RESOLUTION
from crimelake.reference.forces import ENGLAND_WALES_BBOX, FORCES
from crimelake.serve import gaps
from crimelake.serve.access import Principal
from crimelake.serve.store import LakeView, public_forecast

DETAIL_H3_RESOLUTION = 9
PUBLIC_BY_FORCE = "public/cell_month_counts"
PUBLIC_ALL_FORCES = "public/cell_month_counts_all_forces"
COVERAGE = "gold/coverage"
PAGE_MAX = 5000
INCIDENTS_PAGE_MAX = 200
DETAIL_BBOX_MAX_KM2 = 10_000.0
GROUPS = {"all_crime": "All crime", "asb": "Anti-social behaviour", "violence": "Violence and sexual offences",
          "theft": "Theft", "weapons": "Weapons and knife crime"}
NO_PATTERN = "No Pattern Detected"
FORCE_NAMES = {f.slug: f.name for f in FORCES}
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_GEOD = Geod(ellps="WGS84")
log = logging.getLogger("crimelake.serve")


class RequestError(Exception):
    """A request the API refuses, with the HTTP status and a message meant for the caller."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class Forbidden(RequestError):
    status = 403


class NotFound(RequestError):
    status = 404


@dataclass(frozen=True)
class BBox:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    @classmethod
    def parse(cls, text: str) -> BBox:
        parts = text.split(",")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 4 or not all(math.isfinite(v) for v in values):
            raise RequestError(f"bbox {text!r}: expected four numbers min_lon,min_lat,max_lon,max_lat", 422)
        box = cls(*values)
        if box.min_lon >= box.max_lon or box.min_lat >= box.max_lat:
            raise RequestError(f"bbox {text!r}: the minimum must be below the maximum on both axes", 422)
        w, s, e, n = ENGLAND_WALES_BBOX
        if box.max_lon < w or box.min_lon > e or box.max_lat < s or box.min_lat > n:
            raise RequestError(f"bbox {text!r} lies outside England and Wales ({w},{s},{e},{n})")
        return box

    @property
    def area_km2(self) -> float:
        lons = [self.min_lon, self.max_lon, self.max_lon, self.min_lon]
        lats = [self.min_lat, self.min_lat, self.max_lat, self.max_lat]
        area, _ = _GEOD.polygon_area_perimeter(lons, lats)
        return abs(area) / 1e6

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return (lon >= self.min_lon) & (lon <= self.max_lon) & (lat >= self.min_lat) & (lat <= self.max_lat)


@functools.lru_cache(maxsize=500_000)
def cell_geometry(cell: str) -> dict:
    ring = [[round(lng, 6), round(lat, 6)] for lat, lng in h3.cell_to_boundary(cell)]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


@functools.lru_cache(maxsize=500_000)
def cell_centre(cell: str) -> tuple[float, float]:
    lat, lng = h3.cell_to_latlng(cell)
    return lng, lat


@functools.lru_cache(maxsize=500_000)
def cell_area_km2(cell: str) -> float:
    return h3.cell_area(cell, unit="km^2")


def _clean(value):
    """JSON-safe scalars: numpy to Python, NaN and pandas NA to null."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _is_cell(text: str) -> bool:
    """Whether `text` is an H3 cell index: at most 16 hex digits (h3 overflows on longer ones) naming a cell."""
    return 0 < len(text) <= 16 and all(ch in "0123456789abcdefABCDEF" for ch in text) and h3.is_valid_cell(text)


class Layers:
    """Every layer and lookup of the map for one lake."""

    def __init__(self, view: LakeView):
        self.view = view

    # ----- what exists ---------------------------------------------------------------------------------------
    def months(self) -> list[str]:
        """The months with data, worked out once per table version (every request checks its month)."""
        def listed(table: str) -> list[str]:
            counts = self.view.frame(table)
            return sorted(str(m) for m in counts["month"].unique()) if not counts.empty else []

        for table in ("gold/fct_cell_month_counts", PUBLIC_BY_FORCE):
            months = self.view.derived(table, "months", lambda _dt, t=table: listed(t), default=[])
            if months:
                return months
        return []

    def forces(self) -> list[dict]:
        return self.view.derived("gold/dim_cells", "forces", _force_extents, default=[])

    def force_slugs(self) -> set[str]:
        return {f["slug"] for f in self.forces()}

    def no_data(self) -> tuple[str, dict[str, list[dict]]]:
        """Where the gaps come from (`gold/coverage`, or a table of counts before the ledger existed) and, per
        month, the forces with no data or only part of it (crimelake.serve.gaps)."""
        try:
            found = self.view.derived(COVERAGE, "gaps", lambda _dt: gaps.from_coverage(self.view.frame(COVERAGE)))
        except (ValueError, KeyError) as e:  # a broken ledger must not take the map down; the counts still tell
            log.error("gold/coverage cannot be read, gaps come from the counts: %s", e)
            found = None
        if found is not None:
            return COVERAGE, found
        for table in ("gold/fct_cell_month_counts", PUBLIC_BY_FORCE):
            found = self.view.derived(table, "gaps", lambda _dt, t=table: gaps.from_counts(self.view.frame(t)))
            if found is not None:
                return table, found
        return COVERAGE, {}

    def no_data_for(self, month: str, force: str | None = None) -> list[dict]:
        """The forces (or the one force asked for) with no data or partial data in `month`."""
        return [e for e in self.no_data()[1].get(month, []) if force is None or e["force"] == force]

    # ----- parameter checks ----------------------------------------------------------------------------------
    def check_month(self, month: str | None) -> str:
        months = self.months()
        if not months:
            raise NotFound("no data has been loaded yet: run `crimelake demo` or the pipeline first")
        if month is None:
            return months[-1]
        if not MONTH_RE.match(month):
            raise RequestError(f"month {month!r}: expected YYYY-MM", 422)
        if not months[0] <= month <= months[-1]:
            raise RequestError(f"month {month} is outside the data, which runs from {months[0]} to {months[-1]}")
        return month

    def check_force(self, force: str | None) -> str | None:
        if force is None or force == "":
            return None
        if force not in FORCE_NAMES:
            raise NotFound(f"unknown force {force!r}: use a data.police.uk force slug such as "
                           f"{', '.join(sorted(self.force_slugs())[:5]) or 'bedfordshire'}")
        return force

    @staticmethod
    def check_group(group: str) -> str:
        if group not in GROUPS:
            raise RequestError(f"unknown group {group!r}: one of {', '.join(GROUPS)}", 422)
        return group

    def resolution_for(self, who: Principal, force: str | None, resolution: int | None,
                       bbox: BBox | None) -> int:
        """The resolution a request gets: street level where the caller may see it, else the public grid."""
        if resolution is None:
            resolution = DETAIL_H3_RESOLUTION if (force and who.may_see_detail(force)) else PUBLIC_H3_RESOLUTION
        if resolution == PUBLIC_H3_RESOLUTION:
            return resolution
        if resolution != DETAIL_H3_RESOLUTION:
            raise RequestError(f"resolution {resolution}: cells are served at {PUBLIC_H3_RESOLUTION} (public) "
                               f"and {DETAIL_H3_RESOLUTION} (street level)", 422)
        self.require_detail(who, force)
        if force is None:
            if bbox is None:
                raise RequestError(f"street-level cells (resolution {DETAIL_H3_RESOLUTION}) need a force or a "
                                   f"bbox of at most {DETAIL_BBOX_MAX_KM2:,.0f} km²")
            if bbox.area_km2 > DETAIL_BBOX_MAX_KM2:
                raise RequestError(f"bbox covers {bbox.area_km2:,.0f} km²; street-level requests are limited "
                                   f"to {DETAIL_BBOX_MAX_KM2:,.0f} km²: name a force or zoom in", 413)
        return resolution

    def recording_forces(self, cell: str) -> set[str]:
        """The forces that recorded any incident in a street-level cell (from the detail counts, indexed once per
        version)."""
        def build(_dt) -> dict[str, set[str]]:
            frame = self.view.frame("gold/fct_cell_month_counts")
            pairs = frame[["h3_cell", "force"]].drop_duplicates()
            out: dict[str, set[str]] = {}
            for c, f in zip(pairs["h3_cell"].astype(str), pairs["force"].astype(str), strict=True):
                out.setdefault(c, set()).add(f)
            return out

        return self.view.derived("gold/fct_cell_month_counts", "recording_forces", build, default={}).get(cell, set())

    def require_recorded(self, who: Principal, cell: str) -> None:
        """An analyst's street-level answer about a cell needs their force to have recorded something there."""
        if who.role == "analyst" and who.force not in self.recording_forces(cell):
            raise Forbidden(f"{who.force} has recorded no incident in cell {cell}; an analyst sees their own "
                            "force's records only")

    @staticmethod
    def require_detail(who: Principal, force: str | None) -> None:
        if who.may_see_detail(force):
            return
        if who.is_public:
            raise Forbidden("street-level detail needs an analyst, auditor or admin key; the public view is "
                            f"aggregated to H3 resolution {PUBLIC_H3_RESOLUTION}")
        if who.role == "analyst":
            scope = f"force {force}" if force else "every force at once"
            raise Forbidden(f"the key of {who.name} covers street-level detail of {who.force} only, not {scope}")
        raise Forbidden(f"role {who.role} may not see street-level detail")

    # ----- layers --------------------------------------------------------------------------------------------
    def counts(self, who: Principal, *, month: str | None = None, group: str = "all_crime",
               force: str | None = None, measure: str = "count", resolution: int | None = None,
               bbox: BBox | None = None, limit: int = PAGE_MAX, offset: int = 0) -> dict:
        """Recorded offences per cell for a month: exact at street level, protected on the public grid."""
        group, force, month = self.check_group(group), self.check_force(force), self.check_month(month)
        if measure not in ("count", "per_km2"):
            raise RequestError(f"measure {measure!r}: one of count, per_km2", 422)
        res = self.resolution_for(who, force, resolution, bbox)
        frame = self._count_rows(res, group, force)
        breaks = self._count_breaks(res, group, force, measure)
        rows = _in_bbox(frame[frame["month"] == month], bbox)
        page = rows.iloc[offset:offset + limit]
        features = []
        for r in page.itertuples(index=False):
            value = r.count if measure == "count" else r.per_km2
            props = {"h3_cell": r.h3_cell, "force": r.force, "month": month, "group": group,
                     "count": _clean(r.count), "suppressed": bool(r.suppressed), "per_km2": _clean(r.per_km2),
                     "area_km2": round(float(r.area_km2), 4), "value": _clean(value)}
            features.append(_feature(r.h3_cell, r.force, props))
        return {"type": "FeatureCollection", "features": features, "numberMatched": int(len(rows)),
                "numberReturned": len(features), "month": month, "group": group, "resolution": res,
                "measure": measure, "breaks": breaks, "force": force,
                # Forces with no rows there are unknown, not zero: a client must say so rather than draw nothing.
                "no_data_forces": self.no_data_for(month, force)}

    def _count_table(self, res: int, force: str | None) -> str:
        """Street level reads gold; the public grid reads one force's table, or with no force the all-forces
        table (one total per cell), falling back to the per-force table in a lake built before it existed."""
        if res == DETAIL_H3_RESOLUTION:
            return "gold/fct_cell_month_counts"
        if force is None and not self.view.frame(PUBLIC_ALL_FORCES).empty:
            return PUBLIC_ALL_FORCES
        return PUBLIC_BY_FORCE

    def _count_rows(self, res: int, group: str, force: str | None) -> pd.DataFrame:
        """Every month of one group (and force) at one resolution, with count, suppression and density; built
        once per table version and kept, so stepping through months only filters."""
        table = self._count_table(res, force)
        return self.view.derived(table, ("counts", group, force),
                                 lambda _dt: self._build_count_rows(table, group, force), default=_empty_counts())

    def _count_breaks(self, res: int, group: str, force: str | None, measure: str) -> list:
        table = self._count_table(res, force)

        def build(_dt):
            frame = self._count_rows(res, group, force)
            values = frame["count" if measure == "count" else "per_km2"].dropna().to_numpy(dtype=float)
            # Public counts are multiples of 5, so their class boundaries are too (no class that holds no value).
            step = 5 if (measure == "count" and res != DETAIL_H3_RESOLUTION) else 1
            return _breaks(values, integer=measure == "count", step=step)
        breaks = self.view.derived(table, ("breaks", group, force, measure), build)
        return build(None) if breaks is None else breaks

    def _build_count_rows(self, table: str, group: str, force: str | None) -> pd.DataFrame:
        src = self.view.frame(table)
        if src.empty:
            return _empty_counts()
        rows = src[src["forecast_group"] == group]
        if force:
            rows = rows[rows["force"] == force]
        suppressed = (rows["incident_count_suppressed"].astype(bool) if "incident_count_suppressed" in rows
                      else False)
        out = pd.DataFrame({"h3_cell": rows["h3_cell"].astype(str), "force": rows["force"].astype(str),
                            "month": rows["month"].astype(str), "count": rows["incident_count"].astype("Int64"),
                            "suppressed": suppressed})
        out["area_km2"] = [cell_area_km2(c) for c in out["h3_cell"]]
        out["per_km2"] = (out["count"].astype("Float64") / out["area_km2"]).round(3)
        return out.sort_values(["month", "force", "h3_cell"]).reset_index(drop=True)

    def forecast(self, who: Principal, *, group: str = "all_crime", force: str | None = None,
                 resolution: int | None = None, hotspots: str = "5", bbox: BBox | None = None,
                 limit: int = PAGE_MAX, offset: int = 0) -> dict:
        """The champion model's forecast for the month after the data, with the top 1% and 5% cells flagged."""
        group, force = self.check_group(group), self.check_force(force)
        if hotspots not in ("1", "5", "all"):
            raise RequestError(f"hotspots {hotspots!r}: one of 1, 5, all", 422)
        res = self.resolution_for(who, force, resolution, bbox)
        frame = self._forecast_rows(res, group, force)
        if frame.empty:
            raise NotFound(f"no published forecast for {group}: the group has no champion model yet "
                           "(see `crimelake models` and the promotion gate in MLflow)")
        if force:
            frame = frame[frame["force"] == force]
        if hotspots != "all":
            frame = frame[frame[f"hotspot_{hotspots}pct"]]
        frame = _in_bbox(frame.assign(h3_cell=frame["h3_cell"].astype(str), force=frame["force"].astype(str)), bbox)
        frame = frame.sort_values("rank")
        page = frame.iloc[offset:offset + limit]
        features = []
        for r in page.to_dict("records"):
            props = {"h3_cell": r["h3_cell"], "force": r["force"], "group": group,
                     **_forecast_fields(r, res, who)}
            features.append(_feature(r["h3_cell"], r["force"], props))
        first = frame.iloc[0] if len(frame) else None
        return {"type": "FeatureCollection", "features": features, "numberMatched": int(len(frame)),
                "numberReturned": len(features), "group": group, "resolution": res, "hotspots": hotspots,
                "force": force, **self._latest_gaps(force),
                "target_month": None if first is None else first["target_month"],
                "model_name": None if first is None else first["model_name"],
                "model_version": None if first is None else _clean(first["model_version"])}

    def _latest_gaps(self, force: str | None) -> dict:
        """The gaps of the latest month, the last a forecast or a hot spot class was built from."""
        months = self.months()
        latest = months[-1] if months else None
        return {"no_data_month": latest, "no_data_forces": self.no_data_for(latest, force) if latest else []}

    def _forecast_rows(self, res: int, group: str, force: str | None) -> pd.DataFrame:
        if res == DETAIL_H3_RESOLUTION:
            frame = self.view.frame("ml/predictions")
        else:
            by_force = force is not None or self._count_table(res, None) == PUBLIC_BY_FORCE
            frame = self.view.derived("ml/predictions", ("public", by_force), lambda _dt: public_forecast(
                self.view.frame("ml/predictions"), by_force=by_force), default=pd.DataFrame())
        if frame.empty:
            return frame
        return frame[frame["forecast_group"] == group]

    def forecast_summary(self) -> dict:
        frame = self.view.frame("ml/predictions")
        if frame.empty:
            return {}
        first = frame.drop_duplicates("forecast_group")
        return {str(r.forecast_group): {"target_month": r.target_month, "model_name": r.model_name,
                                        "model_version": _clean(r.model_version)}
                for r in first.itertuples(index=False)}

    def emerging(self, who: Principal, *, group: str = "all_crime", force: str | None = None,
                 category: str | None = None, bbox: BBox | None = None, limit: int = PAGE_MAX,
                 offset: int = 0) -> dict:
        """Emerging hot spot classes of street-level cells (patterns other than 'No Pattern Detected')."""
        group, force = self.check_group(group), self.check_force(force)
        if force is None and who.role == "analyst":
            force = who.force
        self.resolution_for(who, force, DETAIL_H3_RESOLUTION, bbox)
        everything = self.view.frame("ml/emerging_hotspots")
        if everything.empty:
            raise NotFound("no emerging hot spot classes yet: run `crimelake models` (it ends with hot spot "
                           "tracking)")
        frame = everything[(everything["forecast_group"] == group) & (everything["category"] != NO_PATTERN)]
        if force:
            frame = frame[frame["force"] == force]
        if category:
            known = sorted(str(c) for c in everything["category"].unique())
            if category not in known:
                raise RequestError(f"category {category!r}: one of {', '.join(known)}", 422)
            frame = frame[frame["category"] == category]
        frame = _in_bbox(frame.assign(h3_cell=frame["h3_cell"].astype(str), force=frame["force"].astype(str)), bbox)
        frame = frame.sort_values(["category", "h3_cell"])
        page = frame.iloc[offset:offset + limit]
        features = [_feature(r.h3_cell, r.force, {
            "h3_cell": r.h3_cell, "force": r.force, "group": group, "category": str(r.category),
            "trend": r.trend, "end_month": r.end_month}) for r in page.itertuples(index=False)]
        return {"type": "FeatureCollection", "features": features, "numberMatched": int(len(frame)),
                "numberReturned": len(features), "group": group, "resolution": DETAIL_H3_RESOLUTION,
                "force": force, **self._latest_gaps(force)}

    # ----- one cell ------------------------------------------------------------------------------------------
    def cell(self, who: Principal, cell: str, *, group: str = "all_crime", force: str | None = None) -> dict:
        """A cell's monthly history, its forecast and (at street level) its emerging class and trace link."""
        group, force = self.check_group(group), self.check_force(force)
        if not _is_cell(cell):
            raise RequestError(f"{cell!r} is not an H3 cell index", 422)
        res = h3.get_resolution(cell)
        if res == DETAIL_H3_RESOLUTION:
            cells = self.view.frame("gold/dim_cells")
            hit = cells[cells["h3_cell"] == cell] if not cells.empty else cells
            if hit.empty:
                raise NotFound(f"cell {cell} is not in the study area")
            # Counts keep the recording force in their grain: the history shown is one force's, the one asked
            # for, else the analyst's own, else (auditors) the cell's force of record.
            cell_force = force or (who.force if who.role == "analyst" else str(hit["force"].iloc[0]))
            self.require_detail(who, cell_force)
            self.require_recorded(who, cell)
        elif res == PUBLIC_H3_RESOLUTION:
            table = self._count_table(res, force)
            public = self.view.frame(table)
            hit = public[public["h3_cell"] == cell] if not public.empty else public
            if force is not None and not hit.empty:
                hit = hit[hit["force"] == force]
            if hit.empty:
                raise NotFound(f"cell {cell} has no published counts" + (f" for {force}" if force else ""))
            totals = hit.groupby("force", observed=True)["incident_count"].sum().sort_values(ascending=False)
            # With no force named, the all-forces table has one row per month (its force names every force the
            # cell covers); a lake without that table shows the force with the most offences in the cell.
            cell_force = str(totals.index[0])
            if force is None and table == PUBLIC_BY_FORCE:
                force = cell_force
        else:
            raise RequestError(f"cell {cell} is at resolution {res}; cells are served at {PUBLIC_H3_RESOLUTION} "
                               f"(public) and {DETAIL_H3_RESOLUTION} (street level)", 422)
        scope = cell_force if res == DETAIL_H3_RESOLUTION else force
        history = self._count_rows(res, group, scope)
        history = history[history["h3_cell"] == cell].set_index("month")
        points = []
        cell_forces = cell_force.split(",")
        for m in self.months():
            status = {e["force"]: e["status"] for e in self.no_data_for(m) if e["force"] in cell_forces}
            # No row is a zero only where the cell's forces delivered the month; where none did it is unknown.
            unknown = len(status) == len(cell_forces) and set(status.values()) == {"missing"}
            if m in history.index:
                row = history.loc[m]
                point = {"month": m, "count": _clean(row["count"]), "suppressed": bool(row["suppressed"])}
            else:
                point = {"month": m, "count": None if unknown else 0, "suppressed": False}
            point["no_data"] = unknown and point["count"] is None
            point["partial"] = bool(status) and not point["no_data"]
            points.append(point)
        forecast = None
        rows = self._forecast_rows(res, group, scope)
        if not rows.empty:
            ranked = len(rows)  # the group's forecast ranks every cell it holds: "5th of 4,217 cells"
            rows = rows[(rows["h3_cell"] == cell) & (rows["force"] == cell_force)]
            if len(rows):
                row = rows.iloc[0].to_dict()
                forecast = (_forecast_fields(row, res, who) | _forecast_interval(row, res)
                            | {"ranked_cells": ranked})
        emerging = None
        if res == DETAIL_H3_RESOLUTION:
            eh = self.view.frame("ml/emerging_hotspots")
            if not eh.empty:
                eh = eh[(eh["h3_cell"] == cell) & (eh["forecast_group"] == group)]
                if len(eh):
                    e = eh.iloc[0]
                    emerging = {"category": str(e["category"]), "trend": e["trend"], "end_month": e["end_month"]}
        detail = res == DETAIL_H3_RESOLUTION
        return {"h3_cell": cell, "resolution": res, "force": cell_force,
                "force_name": force_names(cell_force), "area_km2": round(cell_area_km2(cell), 4),
                "group": group, "geometry": cell_geometry(cell), "history": points, "forecast": forecast,
                "emerging": emerging,
                "trace_url": f"/api/trace/{forecast['prediction_id']}" if forecast and "prediction_id" in forecast
                else None,
                "incidents_url": f"/api/cells/{cell}/incidents" if detail else None}

    def incidents(self, who: Principal, cell: str, *, month: str | None = None, group: str = "all_crime",
                  limit: int = INCIDENTS_PAGE_MAX, offset: int = 0) -> dict:
        """Record-level incidents of one street-level cell and month: never more than one cell at a time.

        `group` keeps the incidents the cell's count for that group is made of (so the list matches the map);
        `any` lists every recorded incident, police-discovered offences included."""
        import pyarrow.compute as pc

        if not _is_cell(cell):
            raise RequestError(f"{cell!r} is not an H3 cell index", 422)
        if h3.get_resolution(cell) != DETAIL_H3_RESOLUTION:
            raise RequestError(f"incidents are listed per street-level cell (resolution {DETAIL_H3_RESOLUTION}); "
                               f"{cell} is at resolution {h3.get_resolution(cell)}", 422)
        if who.is_public:
            self.require_detail(who, None)
        cells = self.view.frame("gold/dim_cells")
        hit = cells[cells["h3_cell"] == cell] if not cells.empty else cells
        if hit.empty:
            raise NotFound(f"cell {cell} is not in the study area")
        # Access follows the force that recorded each incident, not the cell's force: an analyst sees their own
        # force's records wherever they are (a station British Transport Police polices inside a territorial
        # force's cell), and never another force's; auditors and admins see every force's.
        scope = who.force if who.role == "analyst" else None
        self.require_detail(who, scope)
        self.require_recorded(who, cell)
        month = self.check_month(month)
        if group != "any":
            self.check_group(group)
        incidents = self.view.dataset("gold/fct_incidents")
        if incidents is None:
            raise NotFound("no incidents table yet: run the pipeline first")
        columns = ["incident_id", "force", "month", "occurred_date", "category_name", "source", "knife_enabled",
                   "police_discovered", "longitude", "latitude"]
        where = (pc.field("h3_cell") == cell) & (pc.field("month") == month)
        if scope is not None:
            where = where & (pc.field("force") == scope)
        if group != "any":
            where = where & pc.field(f"in_{group}")
        table = incidents.to_table(columns=columns, filter=where)
        rows = table.sort_by([("occurred_date", "ascending"), ("incident_id", "ascending")]).to_pylist()
        page = rows[offset:offset + limit]
        outcomes = self._latest_outcomes([r["incident_id"] for r in page])
        items = []
        for r in page:
            item = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items() if k != "month"}
            item["recorded_month"] = r["month"]
            item["outcome"], item["outcome_month"] = outcomes.get(r["incident_id"], (None, None))
            items.append(item)
        return {"h3_cell": cell, "month": month, "group": group, "force": scope, "items": items,
                "numberMatched": len(rows), "numberReturned": len(items),
                "dates": "recorded_month is the month the incident was published under; occurred_date (where the "
                         "source gives one) is when it happened, which can be in an earlier month"}

    def _latest_outcomes(self, incident_ids: list[str]) -> dict[str, tuple[str, str]]:
        """incident_id -> (latest outcome, its month) from gold/fct_outcomes, for the ids asked (one page)."""
        import pyarrow.compute as pc

        outcomes = self.view.dataset("gold/fct_outcomes")
        if outcomes is None or not incident_ids:
            return {}
        if "incident_record_id" not in outcomes.schema.names:
            return {}
        table = outcomes.to_table(columns=["incident_record_id", "outcome_month", "outcome_type"],
                                  filter=pc.field("incident_record_id").isin(incident_ids))
        latest: dict[str, tuple[str, str]] = {}
        for r in table.sort_by([("outcome_month", "ascending")]).to_pylist():
            latest[r["incident_record_id"]] = (r["outcome_type"], r["outcome_month"])
        return latest

    def force_totals(self, *, group: str = "all_crime", force: str | None = None) -> dict:
        group, force = self.check_group(group), self.check_force(force)
        frame = self.view.frame("public/force_month_totals")
        if frame.empty:
            return {"items": [], "group": group}
        frame = frame[frame["forecast_group"] == group]
        if force:
            frame = frame[frame["force"] == force]
        items = [{"force": r.force, "force_name": FORCE_NAMES.get(r.force, r.force), "month": r.month,
                  "group": group, "count": _clean(r.incident_count), "suppressed": bool(r.incident_count_suppressed)}
                 for r in frame.sort_values(["force", "month"]).itertuples(index=False)]
        return {"items": items, "group": group, "force": force}


def _forecast_fields(r: dict, res: int, who: Principal) -> dict:
    """One forecast row as the API shows it: protected on the public grid, exact (and traceable by those who may
    trace) at street level."""
    public = res == PUBLIC_H3_RESOLUTION
    out = {"target_month": r["target_month"],
           "predicted_count": _clean(r["predicted_count"]) if public else round(float(r["predicted_count"]), 3),
           "suppressed": bool(r.get("predicted_count_suppressed", False)),
           "rank": int(r["rank"]), "percentile": round(float(r["percentile"]), 4),
           "hotspot_1pct": bool(r["hotspot_1pct"]), "hotspot_5pct": bool(r["hotspot_5pct"]),
           "model_name": r["model_name"], "model_version": _clean(r["model_version"])}
    if who.can_trace and not public:
        out["prediction_id"] = r["prediction_id"]
    return out


def _forecast_interval(r: dict, res: int) -> dict:
    """The 90% prediction interval, at street level only: the public grid sums street-level forecasts, and the sum
    of their bounds is not an interval of the sum (nor protected as a published count is)."""
    if res != DETAIL_H3_RESOLUTION:
        return {"lower_90": None, "upper_90": None, "interval_level": None}
    lower, upper = _clean(r.get("lower_90")), _clean(r.get("upper_90"))
    if lower is None or upper is None:
        return {"lower_90": None, "upper_90": None, "interval_level": None}
    return {"lower_90": round(float(lower), 3), "upper_90": round(float(upper), 3), "interval_level": 0.9}


def force_names(forces: str) -> str:
    """`a,b,c` (the forces an all-forces public cell covers) as "A, B and C"."""
    names = [FORCE_NAMES.get(f, f) for f in forces.split(",") if f]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _feature(cell: str, force: str, props: dict) -> dict:
    return {"type": "Feature", "id": f"{cell}/{force}", "geometry": cell_geometry(cell), "properties": props}


def _empty_counts() -> pd.DataFrame:
    return pd.DataFrame({"h3_cell": pd.Series(dtype=str), "force": pd.Series(dtype=str),
                         "month": pd.Series(dtype=str), "count": pd.Series(dtype="Int64"),
                         "suppressed": pd.Series(dtype=bool), "area_km2": pd.Series(dtype=float),
                         "per_km2": pd.Series(dtype="Float64")})


def _in_bbox(frame: pd.DataFrame, bbox: BBox | None) -> pd.DataFrame:
    if bbox is None or frame.empty:
        return frame
    centres = np.array([cell_centre(c) for c in frame["h3_cell"]])
    return frame[bbox.contains(centres[:, 0], centres[:, 1])]


def _breaks(values: np.ndarray, *, integer: bool, step: int = 1) -> list[float]:
    """Five ascending class boundaries (six colour classes) from the quantiles of every month's values, so a
    colour means the same count in every month of the time slider. Integer breaks are multiples of `step`."""
    values = values[values > 0]
    if values.size == 0:
        return [step * k for k in range(1, 6)] if integer else [0.1, 0.2, 0.3, 0.4, 0.5]
    qs = np.quantile(values, [0.5, 0.75, 0.9, 0.97, 0.995])
    gap = float(step) if integer else max(float(values.min()) / 10, 1e-3)
    out: list[float] = []
    for q in qs:
        q = float(math.ceil(q / step) * step) if integer else round(float(q), 3)
        out.append(q if not out or q > out[-1] else out[-1] + gap)
    return [int(v) if integer else round(v, 3) for v in out]


def _force_extents(dt) -> list[dict]:
    cells = dt.to_pandas(columns=["force", "centre_longitude", "centre_latitude"])
    out = []
    for force, g in cells.groupby("force"):
        pad = 0.01
        out.append({"slug": force, "name": FORCE_NAMES.get(force, force),
                    "bbox": [round(float(g["centre_longitude"].min()) - pad, 4),
                             round(float(g["centre_latitude"].min()) - pad, 4),
                             round(float(g["centre_longitude"].max()) + pad, 4),
                             round(float(g["centre_latitude"].max()) + pad, 4)],
                    "cells": int(len(g))})
    return sorted(out, key=lambda f: f["name"])
