"""Row rules a contract states beyond single columns (its `rowRules` custom property), as vectorised checks.

Each rule returns masks of the rows that break it with the reason for each; the caller quarantines those rows.

- `areaByType` {type, area}: the area column holds what the type column says: `h3`, ';'-separated valid H3 cells at
  the lake's resolution; `lsoa`, ';'-separated LSOA codes of England (E01) or Wales (W01); `geojson`, a GeoJSON
  Polygon or MultiPolygon in WGS84 whose rings are closed, valid and inside England and Wales' bounding box.
- `notBefore` {column, other}: a date that, when present, is not before the other (an end not before its start).
- `forecastGroups` {column}: ';'-separated forecast groups of the shared taxonomy, at least one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import h3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crimelake.reference.forces import ENGLAND_WALES_BBOX

LSOA = re.compile(r"^[EW]01[0-9]{6}$")
Broken = tuple[np.ndarray, Callable[[int], str]]


def h3_area_problem(text: str, resolution: int) -> str | None:
    cells = text.split(";")
    bad = [c for c in cells if not h3.is_valid_cell(c)]
    if bad:
        return f"not H3 cells: {', '.join(bad[:3])}"
    other = sorted({h3.get_resolution(c) for c in cells} - {resolution})
    if other:
        return f"H3 cells at resolution {other}, not the lake's {resolution}"
    return None


def lsoa_area_problem(text: str) -> str | None:
    bad = [c for c in text.split(";") if not LSOA.match(c)]
    return f"not LSOA codes (E01/W01 and 6 digits): {', '.join(bad[:3])}" if bad else None


def geometry_problem(text: str) -> str | None:
    """Why GeoJSON text is not a valid WGS84 polygon or multipolygon inside England and Wales, or None."""
    import shapely
    from shapely.geometry import shape

    try:
        geo = json.loads(text)
    except ValueError:
        return "not GeoJSON text"
    if not isinstance(geo, dict) or geo.get("type") not in ("Polygon", "MultiPolygon"):
        kind = geo.get("type") if isinstance(geo, dict) else type(geo).__name__
        return f"a {kind} geometry, not a Polygon or MultiPolygon"
    try:
        poly = shape(geo)
    except (ValueError, TypeError, AttributeError, IndexError) as e:
        return f"malformed {geo['type']} coordinates ({e})"
    if poly.is_empty:
        return "an empty geometry"
    lo_lon, lo_lat, hi_lon, hi_lat = ENGLAND_WALES_BBOX
    x0, y0, x1, y1 = poly.bounds
    if x0 < lo_lon or y0 < lo_lat or x1 > hi_lon or y1 > hi_lat:
        return (f"bounds ({x0:.4f}, {y0:.4f}, {x1:.4f}, {y1:.4f}) lie outside England and Wales' WGS84 box "
                f"{ENGLAND_WALES_BBOX} (coordinates are longitude, latitude in EPSG:4326)")
    if not poly.is_valid:
        return f"not a valid geometry ({shapely.is_valid_reason(poly)})"
    return None


def _area_by_type(rule: dict, raw: dict[str, pa.Array], resolution: int) -> Iterator[Broken]:
    kinds = raw[rule["type"]].to_pylist()
    areas = raw[rule["area"]].to_pylist()
    reasons: dict[int, str] = {}
    for i, (kind, area) in enumerate(zip(kinds, areas, strict=True)):
        if kind is None or area is None:
            continue  # missing values are the columns' own rules' business
        why = (h3_area_problem(area, resolution) if kind == "h3" else lsoa_area_problem(area) if kind == "lsoa"
               else geometry_problem(area) if kind == "geojson" else None)
        if why:
            reasons[i] = why
    mask = np.zeros(len(kinds), dtype=bool)
    mask[list(reasons)] = True
    yield mask, lambda i: f"{rule['area']}: {reasons[i]} (area_type {kinds[i]})"


def _not_before(rule: dict, typed: dict[str, pa.Array]) -> Iterator[Broken]:
    a, b = typed[rule["column"]], typed[rule["other"]]
    mask = pc.fill_null(pc.less(a, b), False).to_numpy(zero_copy_only=False)
    yield mask, lambda i: f"{rule['column']}: {a[i].as_py()} is before {rule['other']} {b[i].as_py()}"


def _forecast_groups(rule: dict, raw: dict[str, pa.Array]) -> Iterator[Broken]:
    from data_contracts.loader import load_taxonomy

    known = load_taxonomy().forecast_groups
    values = raw[rule["column"]].to_pylist()
    unknown = {i: [g for g in v.split(";") if g.strip() not in known] for i, v in enumerate(values) if v is not None}
    mask = np.array([bool(unknown.get(i)) for i in range(len(values))], dtype=bool)
    yield mask, lambda i: f"{rule['column']}: {unknown[i]} not forecast groups (choose from {', '.join(known)})"


def broken(rules: list[dict], raw: dict[str, pa.Array], typed: dict[str, pa.Array], resolution: int) -> Iterator[Broken]:
    """(mask, reason of row i) for every rule in `rules`."""
    for rule in rules:
        if rule.get("rule") == "areaByType":
            yield from _area_by_type(rule, raw, resolution)
        elif rule.get("rule") == "notBefore":
            yield from _not_before(rule, typed)
        elif rule.get("rule") == "forecastGroups":
            yield from _forecast_groups(rule, raw)
        else:
            raise ValueError(f"unknown row rule {rule.get('rule')!r}: supported are areaByType, notBefore and forecastGroups")
