"""Interventions on the map: their areas as outlines and, for analysts, their evaluated effects.

Where and when a force runs an operation is operational information: the public sees no intervention at all,
an analyst sees their own force's, auditors and admins every force's (crimelake.serve.access). Outlines come from
the intervention log (its latest delivery per intervention) resolved to H3 cells and merged into one polygon per
area; effects from `lake/gold/intervention_effects` at its newest version (written after the gold release it
read, by `crimelake models`).

    app.include_router(interventions_router(settings, principal, record))
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures, whose `Who` alias is local.
import math
import threading
from collections.abc import Callable
from typing import Annotated

import h3
import pandas as pd
from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam

from crimelake import interventions as ivs
from crimelake import lake
from crimelake.config import Settings
from crimelake.serve.access import Principal
from crimelake.serve.layers import Forbidden, NotFound

EFFECT_FIELDS = ["group", "status", "rate_ratio", "rate_ratio_lo", "rate_ratio_hi", "p_value", "prevented_per_month",
                 "prevented_per_month_lo", "prevented_per_month_hi", "treated_baseline_mean", "treated_during_mean",
                 "baseline_months", "during_months", "n_treated_cells", "n_comparison_cells", "n_ring_cells",
                 "pre_trend_slope", "pre_trend_p", "comparison_credible", "wdq", "wdq_reading", "note",
                 "gold_counts_version", "bronze_log_version", "evaluated_at"]
PUBLIC_REFUSAL = ("intervention areas are operational: send an analyst key of the force (or an auditor key) to "
                  "see them")


def _plain(value):
    """A JSON-ready scalar: NaN and NA as null, numpy scalars as Python, timestamps as ISO text."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value


class InterventionAreas:
    """The log's areas as GeoJSON features, rebuilt when the log or the cells table has a new version."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._features: list[dict] = []
        self._not_shown: list[dict] = []

    def _cells(self) -> pd.DataFrame:
        from crimelake.forecasting import gold_version

        path = self.settings.gold("dim_cells")
        if not lake.table_exists(path):
            return pd.DataFrame(columns=["h3_cell", "lsoa_code"])
        return lake.read(path, version=gold_version(self.settings, "dim_cells"),
                         columns=["h3_cell", "lsoa_code"]).to_pandas()

    def current(self) -> tuple[list[dict], list[dict]]:
        log_path = ivs.log_path(self.settings)
        cells_path = self.settings.gold("dim_cells")
        key = tuple(lake.version(p) if lake.table_exists(p) else None for p in (log_path, cells_path))
        with self._lock:
            if key != self._key:
                self._features, self._not_shown = self._build()
                self._key = key
            return self._features, self._not_shown

    def _build(self) -> tuple[list[dict], list[dict]]:
        log, _ = ivs.read_log(self.settings)
        if log.empty:
            return [], []
        lsoa = (log["area_type"].astype(str) == "lsoa").any()
        cells = self._cells() if lsoa else pd.DataFrame(columns=["h3_cell", "lsoa_code"])
        features, not_shown = [], []
        for x in ivs.parse(log, cells, self.settings.h3_resolution):
            rec = x.record
            if x.intervention is None:
                not_shown.append({"intervention_id": str(rec["intervention_id"]), "force": str(rec.get("force")),
                                  "reason": x.problem})
                continue
            iv = x.intervention
            features.append({"type": "Feature", "geometry": h3.cells_to_geo(sorted(iv.area)), "properties": {
                "intervention_id": iv.id, "kind": iv.kind, "force": iv.force, "start_month": iv.start,
                "end_month": None if iv.end == ivs.ONGOING else iv.end, "agency": iv.agency,
                "target_groups": list(iv.groups), "description": iv.description, "area_type": str(rec["area_type"]),
                "n_cells": len(iv.area)}})
        return features, not_shown


def interventions_router(settings: Settings, principal: Callable[..., Principal],
                         record: Callable[[Principal, str, str, dict], None] | None = None) -> APIRouter:
    """``/api/interventions`` and ``/api/interventions/{id}/effect``; ``principal`` is the app's dependency that
    resolves the caller, ``record`` (who, action, target, detail) writes the audit log."""
    router = APIRouter(tags=["interventions"])
    areas = InterventionAreas(settings)
    Who = Annotated[Principal, Depends(principal)]

    def refuse_public(who: Principal) -> None:
        if who.is_public:
            raise Forbidden(PUBLIC_REFUSAL)

    @router.get("/api/interventions", summary="Intervention areas of the caller's force (GeoJSON)")
    def intervention_areas(who: Who, force: Annotated[str | None, Query(
            description="force slug; default the analyst's own force, every force for auditors")] = None) -> dict:
        refuse_public(who)
        if force is None and who.role == "analyst":
            force = who.force
        if not who.may_see_detail(force):
            raise Forbidden(f"{who.describe()} may not see the interventions of {force or 'every force'}")
        features, not_shown = areas.current()
        shown = [f for f in features if force is None or f["properties"]["force"] == force]
        hidden = [n for n in not_shown if force is None or n["force"] == force]
        if record is not None:
            record(who, "view", "/api/interventions", {"what": "interventions", "force": force, "features": len(shown)})
        return {"type": "FeatureCollection", "features": shown, "not_shown": hidden, "force": force}

    @router.get("/api/interventions/{intervention_id}/effect", summary="Evaluated effect of one intervention")
    def intervention_effect(who: Who, intervention_id: Annotated[str, PathParam(max_length=200)]) -> dict:
        refuse_public(who)
        effects = ivs.read_effects(settings)
        rows = effects[effects["intervention_id"] == intervention_id]
        force = str(rows["force"].iloc[0]) if len(rows) else None
        if force is None:
            features, _ = areas.current()
            force = next((f["properties"]["force"] for f in features
                          if f["properties"]["intervention_id"] == intervention_id), None)
        # An intervention of another force is not found, rather than forbidden: its existence is not disclosed.
        if force is None or not who.may_see_detail(force):
            raise NotFound(f"no intervention {intervention_id!r} among those {who.describe()} may see")
        if record is not None:
            record(who, "view", intervention_id, {"what": "intervention_effect", "force": force})
        first = rows.iloc[0] if len(rows) else None
        return {"intervention_id": intervention_id, "force": force,
                "kind": None if first is None else first["kind"],
                "start_month": None if first is None else _plain(first["start_month"]),
                "end_month": None if first is None else _plain(first["end_month"]),
                "evaluated": first is not None,
                "effects": [{k: _plain(r.get(k)) for k in EFFECT_FIELDS}
                            for r in rows.sort_values("group").to_dict("records")]}

    return router
