"""Build the map's reference geography: police force areas, the England and Wales outline and place names.

Sources:
- District boundaries: the 2013 local authority districts of `gb_lad_2013.topo.json`, as for the boundary
  (`crimelake.reference.build_boundary`, which names the source and its licence; the same attribution is written
  into every output feature's properties).
- District to force: a police force area is made of whole districts. `DISTRICT_FORCES` below follows the Office
  for National Statistics' "Local Authority District to Community Safety Partnership to Police Force Area
  (December 2013) Lookup in England and Wales" (ONS Open Geography Portal, Open Government Licence v3.0), written
  against data.police.uk's force slugs. British Transport Police polices the railways and has no area.
- Town positions and sizes: `crimelake.reference.forces` (town-centre coordinates, population in thousands).

Outputs (WGS84 GeoJSON, committed beside this module):
- `force_areas.geojson`: one feature per territorial force (`force`, `name`, `districts`), its districts unioned
  and the whole coverage simplified together to `TOLERANCE_M` metres in British National Grid (GEOS coverage
  simplification: neighbouring forces keep one shared edge, with no gaps or overlaps between them).
- `outline.geojson`: the union of those force areas, the coastline and the land border with Scotland.
- `places.geojson`: London, a point per district (its name at the centre of its town when a listed town carries the
  district's name, else at `point_on_surface`) and per listed town, ranked so that a map can label the largest
  places first: `rank` 1 is the most populous, `min_zoom` is the zoom from which the label is worth showing.

    python -m crimelake.reference.build_geography [path/to/gb_lad_2013.topo.json]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import shapely
from shapely.geometry import Point, Polygon, mapping

from crimelake.reference.build_boundary import SOURCE, _arcs, _geometry, _reproject
from crimelake.reference.forces import FORCES

HERE = Path(__file__).parent
FORCE_AREAS = HERE / "force_areas.geojson"
OUTLINE = HERE / "outline.geojson"
PLACES = HERE / "places.geojson"
TOLERANCE_M = 250.0
MIN_ISLAND_KM2 = 0.5  # rocks and sandbanks smaller than this add bytes, not orientation
BUILT_BY = "python -m crimelake.reference.build_geography"
ATTRIBUTION = (
    "Derived from 'GeoJSON and TopoJSON UK Boundary Data by Martin Chorley' (https://github.com/martinjc/UK-GeoJson), "
    "CC BY 4.0: 2013 local authority districts of England and Wales. Contains Ordnance Survey data (c) Crown "
    "copyright and database right 2014 (OS OpenData Licence), and Office for National Statistics data licensed "
    "under the Open Government Licence v3.0. Police force areas per the ONS Local Authority District to Community "
    "Safety Partnership to Police Force Area lookup (December 2013), Open Government Licence v3.0."
)

# Police force area -> its 2013 local authority districts (ONS GSS codes).
DISTRICT_FORCES: dict[str, tuple[str, ...]] = {
    "avon-and-somerset": ("E06000022", "E06000023", "E06000024", "E06000025", "E07000187", "E07000188",
                          "E07000189", "E07000190", "E07000191"),
    "bedfordshire": ("E06000032", "E06000055", "E06000056"),
    "cambridgeshire": ("E06000031", "E07000008", "E07000009", "E07000010", "E07000011", "E07000012"),
    "cheshire": ("E06000006", "E06000007", "E06000049", "E06000050"),
    "city-of-london": ("E09000001",),
    "cleveland": ("E06000001", "E06000002", "E06000003", "E06000004"),
    "cumbria": ("E07000026", "E07000027", "E07000028", "E07000029", "E07000030", "E07000031"),
    "derbyshire": ("E06000015", "E07000032", "E07000033", "E07000034", "E07000035", "E07000036", "E07000037",
                   "E07000038", "E07000039"),
    "devon-and-cornwall": ("E06000026", "E06000027", "E06000052", "E06000053", "E07000040", "E07000041",
                           "E07000042", "E07000043", "E07000044", "E07000045", "E07000046", "E07000047"),
    "dorset": ("E06000028", "E06000029", "E07000048", "E07000049", "E07000050", "E07000051", "E07000052",
               "E07000053"),
    "durham": ("E06000005", "E06000047"),
    "dyfed-powys": ("W06000008", "W06000009", "W06000010", "W06000023"),
    "essex": ("E06000033", "E06000034", "E07000066", "E07000067", "E07000068", "E07000069", "E07000070",
              "E07000071", "E07000072", "E07000073", "E07000074", "E07000075", "E07000076", "E07000077"),
    "gloucestershire": ("E07000078", "E07000079", "E07000080", "E07000081", "E07000082", "E07000083"),
    "greater-manchester": ("E08000001", "E08000002", "E08000003", "E08000004", "E08000005", "E08000006",
                           "E08000007", "E08000008", "E08000009", "E08000010"),
    "gwent": ("W06000018", "W06000019", "W06000020", "W06000021", "W06000022"),
    "hampshire": ("E06000044", "E06000045", "E06000046", "E07000084", "E07000085", "E07000086", "E07000087",
                  "E07000088", "E07000089", "E07000090", "E07000091", "E07000092", "E07000093", "E07000094"),
    "hertfordshire": ("E07000095", "E07000096", "E07000098", "E07000099", "E07000102", "E07000103", "E07000240",
                      "E07000241", "E07000242", "E07000243"),
    "humberside": ("E06000010", "E06000011", "E06000012", "E06000013"),
    "kent": ("E06000035", "E07000105", "E07000106", "E07000107", "E07000108", "E07000109", "E07000110",
             "E07000111", "E07000112", "E07000113", "E07000114", "E07000115", "E07000116"),
    "lancashire": ("E06000008", "E06000009", "E07000117", "E07000118", "E07000119", "E07000120", "E07000121",
                   "E07000122", "E07000123", "E07000124", "E07000125", "E07000126", "E07000127", "E07000128"),
    "leicestershire": ("E06000016", "E06000017", "E07000129", "E07000130", "E07000131", "E07000132",
                       "E07000133", "E07000134", "E07000135"),
    "lincolnshire": ("E07000136", "E07000137", "E07000138", "E07000139", "E07000140", "E07000141", "E07000142"),
    "merseyside": ("E08000011", "E08000012", "E08000013", "E08000014", "E08000015"),
    "metropolitan": tuple(f"E090000{n:02d}" for n in range(2, 34)),  # every London borough but the City
    "norfolk": ("E07000143", "E07000144", "E07000145", "E07000146", "E07000147", "E07000148", "E07000149"),
    "north-wales": ("W06000001", "W06000002", "W06000003", "W06000004", "W06000005", "W06000006"),
    "north-yorkshire": ("E06000014", "E07000163", "E07000164", "E07000165", "E07000166", "E07000167",
                        "E07000168", "E07000169"),
    "northamptonshire": ("E07000150", "E07000151", "E07000152", "E07000153", "E07000154", "E07000155",
                         "E07000156"),
    "northumbria": ("E06000057", "E08000021", "E08000022", "E08000023", "E08000024", "E08000037"),
    "nottinghamshire": ("E06000018", "E07000170", "E07000171", "E07000172", "E07000173", "E07000174",
                        "E07000175", "E07000176"),
    "south-wales": ("W06000011", "W06000012", "W06000013", "W06000014", "W06000015", "W06000016", "W06000024"),
    "south-yorkshire": ("E08000016", "E08000017", "E08000018", "E08000019"),
    "staffordshire": ("E06000021", "E07000192", "E07000193", "E07000194", "E07000195", "E07000196",
                      "E07000197", "E07000198", "E07000199"),
    "suffolk": ("E07000200", "E07000201", "E07000202", "E07000203", "E07000204", "E07000205", "E07000206"),
    "surrey": ("E07000207", "E07000208", "E07000209", "E07000210", "E07000211", "E07000212", "E07000213",
               "E07000214", "E07000215", "E07000216", "E07000217"),
    "sussex": ("E06000043", "E07000061", "E07000062", "E07000063", "E07000064", "E07000065", "E07000223",
               "E07000224", "E07000225", "E07000226", "E07000227", "E07000228", "E07000229"),
    "thames-valley": ("E06000036", "E06000037", "E06000038", "E06000039", "E06000040", "E06000041",
                      "E06000042", "E07000004", "E07000005", "E07000006", "E07000007", "E07000177",
                      "E07000178", "E07000179", "E07000180", "E07000181"),
    "warwickshire": ("E07000218", "E07000219", "E07000220", "E07000221", "E07000222"),
    "west-mercia": ("E06000019", "E06000020", "E06000051", "E07000234", "E07000235", "E07000236", "E07000237",
                    "E07000238", "E07000239"),
    "west-midlands": ("E08000025", "E08000026", "E08000027", "E08000028", "E08000029", "E08000030",
                      "E08000031"),
    "west-yorkshire": ("E08000032", "E08000033", "E08000034", "E08000035", "E08000036"),
    "wiltshire": ("E06000030", "E06000054"),
}


def force_of_district() -> dict[str, str]:
    """District code -> force slug; ValueError if a district is listed twice or a force is not a known one."""
    known = {f.slug for f in FORCES}
    out: dict[str, str] = {}
    for slug, codes in DISTRICT_FORCES.items():
        if slug not in known:
            raise ValueError(f"{slug!r} is not a force slug of crimelake.reference.forces")
        for code in codes:
            if code in out:
                raise ValueError(f"district {code} is assigned to both {out[code]} and {slug}")
            out[code] = slug
    missing = sorted(f.slug for f in FORCES if f.is_territorial and f.slug not in DISTRICT_FORCES)
    if missing:
        raise ValueError(f"territorial forces with no district: {', '.join(missing)}")
    return out


def display_name(name: str) -> str:
    """'Bristol, City of' -> 'Bristol'; 'Herefordshire, County of' -> 'Herefordshire'."""
    return re.sub(r",\s*(City|County) of$", "", name).strip()


def _districts(source: Path) -> dict[str, tuple[str, object]]:
    """England and Wales district code -> (name, geometry in British National Grid)."""
    topo = json.loads(source.read_text())
    arcs = _arcs(topo)
    out = {}
    for g in topo["objects"]["lad"]["geometries"]:
        code = g["properties"]["LAD13CD"]
        if code[0] in "EW":
            geom = shapely.make_valid(_reproject(_geometry(arcs, g), "EPSG:4326", "EPSG:27700"))
            out[code] = (g["properties"]["LAD13NM"], geom)
    return out


def _polygons(geom):
    """The polygons of `geom` (make_valid can return collections with stray lines)."""
    return [p for p in shapely.get_parts(shapely.get_parts(geom)) if p.geom_type == "Polygon"]


def _feature_collection(features: list[dict]) -> dict:
    return {"type": "FeatureCollection", "attribution": ATTRIBUTION, "built_by": BUILT_BY, "features": features}


def _wgs84(geom):
    return shapely.set_precision(shapely.make_valid(_reproject(geom, "EPSG:27700", "EPSG:4326")), 1e-4)


def _as_coverage(areas: list) -> list:
    """Force areas that tile the land: the quantised source's districts neither meet exactly (slivers open
    between them once repaired) nor stay apart (some overlap), which coverage simplification cannot take. Each
    sliver goes to the force it shares most edge with; an overlap stays with the force listed first."""
    whole = shapely.union_all(areas)
    land = shapely.union_all([Polygon(p.exterior) for p in _polygons(whole)])
    tree = shapely.STRtree(areas)
    extra: list[list] = [[] for _ in areas]
    for gap in _polygons(land.difference(whole)):
        touch = gap.buffer(1.0)
        near = tree.query(touch)
        if len(near):
            extra[max(near, key=lambda i: touch.intersection(areas[i]).area)].append(gap)
    tiled, taken = [], None
    for area, gaps in zip(areas, extra, strict=True):
        area = shapely.union_all([area, *gaps])
        if taken is not None:
            area = area.difference(taken)
        taken = area if taken is None else shapely.union_all([taken, area])
        tiled.append(shapely.set_precision(area, 1.0))
    return tiled


def build_force_areas(districts: dict) -> tuple[dict, dict]:
    """The force areas and the outline as GeoJSON FeatureCollections."""
    assigned = force_of_district()
    unassigned = sorted(set(districts) - set(assigned))
    unknown = sorted(set(assigned) - set(districts))
    if unassigned or unknown:
        raise ValueError(f"districts without a force: {unassigned}; listed districts not in the source: {unknown}")
    slugs = sorted(DISTRICT_FORCES)
    areas = []
    for slug in slugs:
        union = shapely.union_all([shapely.set_precision(districts[c][1], 1.0) for c in DISTRICT_FORCES[slug]])
        areas.append(shapely.MultiPolygon([p for p in _polygons(union) if p.area >= MIN_ISLAND_KM2 * 1e6]))
    simplified = shapely.coverage_simplify(_as_coverage(areas), TOLERANCE_M)
    names = {f.slug: f.name for f in FORCES}
    features = [{
        "type": "Feature",
        "properties": {"force": slug, "name": names[slug], "districts": list(DISTRICT_FORCES[slug]),
                       "source": ATTRIBUTION},
        "geometry": mapping(_wgs84(geom)),
    } for slug, geom in zip(slugs, simplified, strict=True)]
    # The outline has no holes: what is left between forces after simplifying is noise, not a lake.
    outline = shapely.union_all([Polygon(p.exterior) for p in _polygons(shapely.union_all(simplified))])
    return _feature_collection(features), _feature_collection([{
        "type": "Feature",
        "properties": {"name": "England and Wales", "source": ATTRIBUTION},
        "geometry": mapping(_wgs84(outline)),
    }])


def min_zoom(rank: int) -> int:
    """The zoom from which a place of this rank is labelled: a dozen cities on the national view, more as the
    map closes in (the page still hides a label that would overlap one already drawn)."""
    for limit, zoom in ((12, 6), (40, 7), (110, 8), (260, 9), (450, 10)):
        if rank <= limit:
            return zoom
    return 11


def build_places(districts: dict) -> dict:
    """District and town labels, most populous first."""
    assigned = force_of_district()
    towns = [(t, f.slug) for f in FORCES if f.is_territorial for t in f.towns]
    town_points = {id(t): _reproject(Point(t.lon, t.lat), "EPSG:4326", "EPSG:27700") for t, _ in towns}
    places = []
    for code, (name, geom) in districts.items():
        label = display_name(name)
        inside = [t for t, _ in towns if geom.covers(town_points[id(t)])]
        # A district's population is roughly that of the towns listed inside it; a rural one falls back to area.
        people = sum(t.weight for t in inside)
        named = [t for t in inside if t.name == label]
        point = town_points[id(named[0])] if named else geom.point_on_surface()
        places.append({"name": label, "kind": "district", "code": code, "force": assigned[code],
                       "population_k": people, "area_km2": round(geom.area / 1e6, 1), "point": point})
    # London is 33 districts, none named London: without its own label the national view would not name it.
    boroughs = [geom for code, (_, geom) in districts.items() if code.startswith("E09")]
    places.append({"name": "London", "kind": "city", "code": None, "force": "metropolitan",
                   "population_k": sum(t.weight for t, slug in towns if slug in ("metropolitan", "city-of-london")),
                   "area_km2": round(sum(g.area for g in boroughs) / 1e6, 1),
                   "point": shapely.union_all(boroughs).centroid})
    district_names = {p["name"] for p in places}
    for t, slug in towns:
        if t.name not in district_names:
            places.append({"name": t.name, "kind": "town", "code": None, "force": slug, "population_k": t.weight,
                           "area_km2": None, "point": town_points[id(t)]})
    places.sort(key=lambda p: (-p["population_k"], -(p["area_km2"] or 0), p["name"]))
    features = []
    for rank, p in enumerate(places, start=1):
        point = _reproject(p.pop("point"), "EPSG:27700", "EPSG:4326")
        features.append({
            "type": "Feature",
            # The collection carries the attribution once: repeated on 700 points it would be most of the file.
            "properties": {**p, "rank": rank, "min_zoom": min_zoom(rank)},
            "geometry": {"type": "Point", "coordinates": [round(point.x, 4), round(point.y, 4)]},
        })
    return _feature_collection(features)


def build(source: Path = SOURCE) -> dict[Path, dict]:
    districts = _districts(source)
    forces, outline = build_force_areas(districts)
    return {FORCE_AREAS: forces, OUTLINE: outline, PLACES: build_places(districts)}


def main(argv: list[str]) -> None:
    source = Path(argv[0]) if argv else SOURCE
    for path, collection in build(source).items():
        path.write_text(json.dumps(collection, separators=(",", ":")) + "\n")
        print(f"{path}: {path.stat().st_size / 1e3:.0f} kB from {source}")


if __name__ == "__main__":
    main(sys.argv[1:])
