"""Build `england_wales.geojson`, the simplified England and Wales boundary the ingest tests locations against.

Source: local authority district boundaries of Great Britain, 2013 codes (E... England, W... Wales, S... Scotland),
TopoJSON quantised to about 0.001 degrees, from martinjc/UK-GeoJSON (`json/administrative/gb/topo_lad.json`):
"GeoJSON and TopoJSON UK Boundary Data by Martin Chorley", Creative Commons Attribution 4.0 International
(https://github.com/martinjc/UK-GeoJson). Contains Ordnance Survey data © Crown copyright and database right 2014
(OS OpenData Licence), and Office for National Statistics data licensed under the Open Government Licence v3.0.
The same attribution is written into the GeoJSON's properties, as that licence asks of any reuse.

Method: the English and Welsh districts are unioned, grown seaward by `COAST_M` metres (police map points sit on
piers, harbours and the coast road, and the source is quantised and simplified), less Scotland as it stands (the
land border stays where it is), simplified to `TOLERANCE_M` metres in British National Grid and written in WGS84.

    python -m crimelake.reference.build_boundary [path/to/gb_lad_2013.topo.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon

SOURCE = Path(__file__).resolve().parents[3] / "shared" / "data" / "geography" / "gb_lad_2013.topo.json"
OUT = Path(__file__).with_name("england_wales.geojson")
COAST_M = 5000.0
TOLERANCE_M = 150.0
ATTRIBUTION = (
    "Derived from 'GeoJSON and TopoJSON UK Boundary Data by Martin Chorley' (https://github.com/martinjc/UK-GeoJson), "
    "CC BY 4.0: 2013 local authority districts of England and Wales, unioned, grown 5 km seaward, less Scotland, "
    "simplified to 150 m. Contains Ordnance Survey data (c) Crown copyright and database right 2014 (OS OpenData "
    "Licence), and Office for National Statistics data licensed under the Open Government Licence v3.0."
)


def _arcs(topo: dict) -> list[np.ndarray]:
    """The topology's arcs as absolute lon/lat arrays (TopoJSON stores quantised deltas)."""
    scale = np.asarray(topo["transform"]["scale"], dtype=float)
    shift = np.asarray(topo["transform"]["translate"], dtype=float)
    return [np.cumsum(np.asarray(a, dtype=float), axis=0) * scale + shift for a in topo["arcs"]]


def _ring(arcs: list[np.ndarray], refs: list[int]) -> np.ndarray:
    parts = []
    for k, r in enumerate(refs):
        pts = arcs[r] if r >= 0 else arcs[~r][::-1]
        parts.append(pts if k == 0 else pts[1:])
    return np.concatenate(parts)


def _geometry(arcs: list[np.ndarray], geom: dict) -> MultiPolygon:
    polys = [geom["arcs"]] if geom["type"] == "Polygon" else geom["arcs"]
    return MultiPolygon([Polygon(_ring(arcs, p[0]), [_ring(arcs, h) for h in p[1:]]) for p in polys])


def _reproject(geom, src: str, dst: str):
    tr = Transformer.from_crs(src, dst, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def build(source: Path = SOURCE) -> dict:
    topo = json.loads(source.read_text())
    arcs = _arcs(topo)
    by_country: dict[str, list] = {"EW": [], "S": []}
    for g in topo["objects"]["lad"]["geometries"]:
        code = g["properties"]["LAD13CD"]
        by_country["S" if code.startswith("S") else "EW"].append(shapely.make_valid(_geometry(arcs, g)))
    # Simplified a little before growing, which would take minutes on the full outline.
    ew, scotland = (shapely.make_valid(_reproject(shapely.union_all(by_country[k]), "EPSG:4326", "EPSG:27700"))
                    .simplify(TOLERANCE_M / 3) for k in ("EW", "S"))
    area = ew.buffer(COAST_M).difference(scotland).simplify(TOLERANCE_M, preserve_topology=True)
    area = shapely.make_valid(_reproject(area, "EPSG:27700", "EPSG:4326"))
    area = shapely.set_precision(area, 1e-5)
    return {
        "type": "FeatureCollection",
        "features": [{
            "type": "Feature",
            "properties": {"name": "England and Wales", "source": ATTRIBUTION,
                           "built_by": "python -m crimelake.reference.build_boundary"},
            "geometry": shapely.geometry.mapping(area),
        }],
    }


def main(argv: list[str]) -> None:
    source = Path(argv[0]) if argv else SOURCE
    OUT.write_text(json.dumps(build(source), separators=(",", ":")) + "\n")
    print(f"{OUT}: {OUT.stat().st_size / 1e3:.0f} kB from {source}")


if __name__ == "__main__":
    main(sys.argv[1:])
