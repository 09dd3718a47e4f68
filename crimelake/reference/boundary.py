"""Whether places lie in England and Wales: by the area code's country prefix, else by a boundary polygon.

The polygon (`england_wales.geojson`, 29 kB) is the 2013 local authority districts of England and Wales unioned,
grown 5 km seaward (map points sit on piers, harbours and the coast road, and the source is coarse), less Scotland
as it stands, and simplified to 150 m; how it is built, its source and its licence are in `build_boundary.py` and
in the file's own properties. It keeps Glasgow, Belfast, Douglas and Calais out, and Berwick-upon-Tweed, Anglesey,
the Isles of Scilly and Dover in. British Transport Police also publishes incidents on Scotland's railways (without
an area code): those lie outside England and Wales, and are quarantined as such.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from crimelake.reference.forces import ENGLAND_WALES_BBOX

BOUNDARY_PATH = Path(__file__).with_name("england_wales.geojson")
# Census areas (LSOA E01/W01, MSOA E02/W02) and local authorities (E06-E09, W06) carry the country in the prefix.
COUNTRY_PREFIXES = ("E", "W")


@cache
def england_wales() -> shapely.Geometry:
    """The boundary polygon, prepared for fast repeated point tests."""
    feature = json.loads(BOUNDARY_PATH.read_text())["features"][0]
    geom = shapely.geometry.shape(feature["geometry"])
    shapely.prepare(geom)
    return geom


def contains(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True where the WGS84 point lies in England and Wales (False for NaN). Police locations are snapped to
    shared map points, so each distinct point is tested once."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    out = np.zeros(len(lon), dtype=bool)
    present = ~(np.isnan(lon) | np.isnan(lat))
    if not present.any():
        return out
    pairs = np.empty(int(present.sum()), dtype=np.complex128)
    pairs.real, pairs.imag = lon[present], lat[present]
    points, inverse = np.unique(pairs, return_inverse=True)
    out[present] = shapely.contains_xy(england_wales(), points.real, points.imag)[inverse.reshape(-1)]
    return out


def coded_inside(codes: pa.Array) -> np.ndarray:
    """True where a row's GSS area code places it in England or Wales (False where the code is missing)."""
    prefix = pc.utf8_slice_codeunits(codes, 0, 1)
    return pc.fill_null(pc.is_in(prefix, pa.array(COUNTRY_PREFIXES)), False).to_numpy(zero_copy_only=False)


def in_box(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True where the point lies in the generous box around England and Wales (False for NaN)."""
    mnx, mny, mxx, mxy = ENGLAND_WALES_BBOX
    with np.errstate(invalid="ignore"):
        return (lon >= mnx) & (lon <= mxx) & (lat >= mny) & (lat <= mxy)


def inside(lon: np.ndarray, lat: np.ndarray, codes: pa.Array | None = None) -> np.ndarray:
    """True where a located row lies in England and Wales. A row with an area code is placed by the code's
    country (the publisher assigned it from the exact location, which the published point only approximates),
    as long as its point is anywhere near Britain: a code cannot vouch for coordinates in another country. A row
    without one is placed by the boundary polygon."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    if codes is None:
        return contains(lon, lat)
    has_code = codes.is_valid().to_numpy(zero_copy_only=False)
    out = coded_inside(codes) & in_box(lon, lat)
    rest = ~has_code
    if rest.any():
        out[rest] = contains(lon[rest], lat[rest])
    return out
