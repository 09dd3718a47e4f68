"""Reference geography for the map: the England and Wales outline, police force areas, place names and, at street
zoom, street names. Public (geography is not sensitive) and cacheable; every answer carries its attribution.

The outline, force areas and places are the committed files `crimelake.reference.build_geography` writes. Street
names come from the lake: data.police.uk publishes every street-level crime at an anonymous map point named
"On or near <street>", so the distinct named points of the latest `STREET_MONTHS` months of the bronze
`police_uk/street` table form a small gazetteer. Only names and positions leave the server, never counts.

    app.include_router(geography_router(settings))
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from functools import cache
from pathlib import Path
from typing import Annotated

import duckdb
import numpy as np
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from fastapi import APIRouter, HTTPException, Query, Request, Response

from crimelake.config import Settings
from crimelake.reference import build_geography
from crimelake.serve.layers import BBox, RequestError

STREET_MONTHS = 12
STREETS_BBOX_MAX_KM2 = 50.0  # about 7 km square: a street-zoom view of a town, never a county
STREETS_LIMIT_MAX = 500
STREETS_REFRESH_SECONDS = 60.0
CACHE_SECONDS = 86_400  # the committed files change only with a new install
STREET_ATTRIBUTION = ("Street names: data.police.uk map points (\"On or near ...\"), Open Government Licence v3.0; "
                      "contains Ordnance Survey data (c) Crown copyright and database right.")
# What data.police.uk writes instead of a street where a map point is a kind of place: no help in finding one.
PLACE_TYPES = frozenset({
    "", "Parking Area", "Supermarket", "Petrol Station", "Shopping Area", "Sports/Recreation Area",
    "Further/Higher Educational Building", "Park/Open Space", "Nightclub", "Police Station", "Hospital",
    "Bus/Coach Station", "Theatre/Concert Hall", "Conference/Exhibition Centre", "Airport/Airfield", "Prison",
    "Pedestrian Subway", "Nursing Home",
})
FILES = {"outline": build_geography.OUTLINE, "forces": build_geography.FORCE_AREAS,
         "places": build_geography.PLACES}


@cache
def reference(name: str) -> tuple[bytes, str]:
    """A committed reference file as it is served (bytes, ETag); FileNotFoundError names a broken install."""
    path: Path = FILES[name]
    body = path.read_bytes()
    json.loads(body)  # a truncated file fails here, at the first request, not in the browser
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def street_name(location: str | None) -> str | None:
    """'On or near  High Street' -> 'High Street'; None for a place type or anything without a street."""
    if not location or not location.startswith("On or near"):
        return None
    name = re.sub(r"\s+", " ", location[len("On or near"):]).strip()
    return None if name in PLACE_TYPES else name


class StreetIndex:
    """Named map points of the bronze data.police.uk street table, re-read when the table has a new version
    (checked at most every `refresh_seconds`)."""

    def __init__(self, settings: Settings, refresh_seconds: float = STREETS_REFRESH_SECONDS):
        self.path = settings.bronze("police_uk", "street")
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._checked = -1e18
        self._version: int | None = None
        self.names = np.array([], dtype=object)
        self.lon = np.array([], dtype=float)
        self.lat = np.array([], dtype=float)

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.refresh_seconds:
            return
        with self._lock:
            if now - self._checked < self.refresh_seconds:
                return
            try:
                table = DeltaTable(str(self.path))
            except TableNotFoundError:
                self._checked = now
                return
            if table.version() != self._version:
                self._load(table)
            self._checked = now

    def _load(self, table: DeltaTable) -> None:
        dataset = table.to_pyarrow_dataset()
        con = duckdb.connect()
        try:
            con.register("street", dataset)
            months = [r[0] for r in con.execute(
                "select distinct month from street order by month desc limit ?", [STREET_MONTHS]).fetchall()]
            rows = con.execute(
                "select location, wgs84_lon, wgs84_lat from street "
                "where month in (select unnest(?::varchar[])) and location like 'On or near%' "
                "and wgs84_lon is not null and wgs84_lat is not null group by all", [months]).fetchall()
        finally:
            con.close()
        named = [(n, x, y) for loc, x, y in rows if (n := street_name(loc))]
        self.names = np.array([n for n, _, _ in named], dtype=object)
        self.lon = np.array([x for _, x, _ in named], dtype=float)
        self.lat = np.array([y for _, _, y in named], dtype=float)
        self._version = table.version()

    @property
    def version(self) -> int | None:
        self._refresh()
        return self._version

    def within(self, box: BBox, limit: int) -> list[dict]:
        """One label per street name and neighbourhood in `box`, the streets with the most map points (the
        longest) first, at most `limit`. The same name far apart (two High Streets) is labelled in both places."""
        self._refresh()
        inside = np.flatnonzero(box.contains(self.lon, self.lat))
        if not len(inside):
            return []
        # Neighbourhoods: an 8 x 8 grid over the box.
        gx = np.floor((self.lon[inside] - box.min_lon) / (box.max_lon - box.min_lon) * 8).astype(int)
        gy = np.floor((self.lat[inside] - box.min_lat) / (box.max_lat - box.min_lat) * 8).astype(int)
        groups: dict[tuple[str, int, int], list[int]] = {}
        for i, x, y in zip(inside, gx, gy, strict=True):
            groups.setdefault((self.names[i], int(x), int(y)), []).append(int(i))
        ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0][0]))
        out = []
        for (name, _, _), members in ordered[:limit]:
            idx = np.asarray(members)
            # The member nearest the group's middle: a label on the street itself, not between two of its points.
            mid = np.argmin((self.lon[idx] - self.lon[idx].mean()) ** 2 + (self.lat[idx] - self.lat[idx].mean()) ** 2)
            k = idx[mid]
            out.append({"type": "Feature", "properties": {"name": name, "points": len(members)},
                        "geometry": {"type": "Point",
                                     "coordinates": [round(float(self.lon[k]), 6), round(float(self.lat[k]), 6)]}})
        return out


def _cached(request: Request, name: str) -> Response:
    body, etag = reference(name)
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={CACHE_SECONDS}"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/geo+json", headers=headers)


GEOJSON = {200: {"description": "a GeoJSON FeatureCollection with its `attribution`",
                 "content": {"application/geo+json": {}}}}


def geography_router(settings: Settings, streets: StreetIndex | None = None) -> APIRouter:
    """The /api/geography endpoints over one crimelake home."""
    index = streets or StreetIndex(settings)
    router = APIRouter(prefix="/api/geography", tags=["geography"])

    @router.get("/outline", responses=GEOJSON, summary="The England and Wales coastline and land border")
    def outline(request: Request) -> Response:
        return _cached(request, "outline")

    @router.get("/forces", responses=GEOJSON,
                summary="Police force areas (one feature per territorial force, with its data.police.uk slug)")
    def forces(request: Request) -> Response:
        return _cached(request, "forces")

    @router.get("/places", responses=GEOJSON,
                summary="Place names (London, districts, towns), `rank` 1 the largest, with a `min_zoom` each")
    def places(request: Request) -> Response:
        return _cached(request, "places")

    @router.get("/streets", responses={**GEOJSON, 413: {"description": "a bbox larger than the street-zoom limit"},
                                        422: {"description": "a malformed bbox"}},
                summary="Street names at the anonymous map points of data.police.uk, for a street-zoom bbox")
    def street_names(
            bbox: Annotated[str, Query(description="min_lon,min_lat,max_lon,max_lat (WGS84), at most "
                                                   f"{STREETS_BBOX_MAX_KM2:g} km²",
                                       examples=["-0.48,52.12,-0.44,52.15"])],
            limit: Annotated[int, Query(ge=1, le=STREETS_LIMIT_MAX)] = 150) -> Response:
        try:
            box = BBox.parse(bbox)
        except RequestError as e:
            raise HTTPException(e.status, str(e)) from None
        if box.area_km2 > STREETS_BBOX_MAX_KM2:
            raise HTTPException(413, f"bbox covers {box.area_km2:,.0f} km²: street names are served for at most "
                                     f"{STREETS_BBOX_MAX_KM2:g} km² (zoom in)")
        features = index.within(box, limit)
        body = {"type": "FeatureCollection", "attribution": STREET_ATTRIBUTION, "source_version": index.version,
                "numberReturned": len(features), "limit": limit, "features": features}
        return Response(json.dumps(body, separators=(",", ":")), media_type="application/geo+json",
                        headers={"Cache-Control": f"public, max-age={int(STREETS_REFRESH_SECONDS)}"})

    return router
