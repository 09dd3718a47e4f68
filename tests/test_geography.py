"""The map's reference geography (force areas, outline, place names, built once and committed) and the public
/api/geography endpoints, street names included."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
import shapely
from deltalake import write_deltalake
from fastapi import FastAPI
from fastapi.testclient import TestClient
from shapely.geometry import Point, shape

from crimelake.reference import FORCES
from crimelake.reference.build_geography import (
    DISTRICT_FORCES,
    FORCE_AREAS,
    OUTLINE,
    PLACES,
    display_name,
    force_of_district,
    min_zoom,
)
from crimelake.serve.geography import PLACE_TYPES, StreetIndex, geography_router, street_name

TERRITORIAL = sorted(f.slug for f in FORCES if f.is_territorial)
DISTRICTS_2013 = 348  # England 326 + Wales 22


def _load(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def force_areas():
    return _load(FORCE_AREAS)


@pytest.fixture(scope="module")
def places():
    return _load(PLACES)


# ----- the district -> force table --------------------------------------------------------------------------


def test_every_district_is_assigned_once_and_every_territorial_force_has_one():
    table = force_of_district()
    listed = [c for codes in DISTRICT_FORCES.values() for c in codes]
    assert len(listed) == len(set(listed)) == len(table) == DISTRICTS_2013
    assert all(c[:3] in ("E06", "E07", "E08", "E09", "W06") and len(c) == 9 for c in listed)
    assert sorted(DISTRICT_FORCES) == TERRITORIAL
    assert "btp" not in DISTRICT_FORCES  # British Transport Police has no area
    assert sum(c.startswith("W") for c in listed) == 22
    welsh = {f.slug for f in FORCES if f.welsh}
    assert {table[c] for c in listed if c.startswith("W")} == welsh


def test_a_district_listed_twice_is_refused(monkeypatch):
    from crimelake.reference import build_geography

    monkeypatch.setitem(build_geography.DISTRICT_FORCES, "bedfordshire",
                        DISTRICT_FORCES["bedfordshire"] + ("E07000008",))
    with pytest.raises(ValueError, match="E07000008 is assigned to both"):
        force_of_district()


def test_display_names():
    assert display_name("Bristol, City of") == "Bristol"
    assert display_name("Herefordshire, County of") == "Herefordshire"
    assert display_name("Kingston upon Hull, City of") == "Kingston upon Hull"
    assert display_name("Newcastle upon Tyne") == "Newcastle upon Tyne"
    assert [min_zoom(r) for r in (1, 12, 13, 1000)] == [6, 6, 7, 11]


# ----- the committed files ----------------------------------------------------------------------------------


def test_reference_files_are_small_and_attributed(force_areas, places):
    total = sum(p.stat().st_size for p in (FORCE_AREAS, OUTLINE, PLACES))
    assert total < 1_500_000, f"{total} bytes"
    for collection in (force_areas, places, _load(OUTLINE)):
        assert "Martin Chorley" in collection["attribution"]
        assert "Open Government Licence" in collection["attribution"]
        assert "Ordnance Survey" in collection["attribution"]
    for f in force_areas["features"] + _load(OUTLINE)["features"]:
        assert "CC BY 4.0" in f["properties"]["source"]


def test_one_valid_area_per_territorial_force_made_of_its_districts(force_areas):
    features = force_areas["features"]
    assert sorted(f["properties"]["force"] for f in features) == TERRITORIAL
    names = {f.slug: f.name for f in FORCES}
    seen: list[str] = []
    for f in features:
        p = f["properties"]
        assert p["name"] == names[p["force"]]
        assert p["districts"] == list(DISTRICT_FORCES[p["force"]])
        seen += p["districts"]
        geom = shape(f["geometry"])
        assert geom.geom_type in ("Polygon", "MultiPolygon") and geom.is_valid and not geom.is_empty
    assert len(seen) == len(set(seen)) == DISTRICTS_2013


def test_force_areas_tile_the_land_and_hold_their_towns(force_areas):
    areas = {f["properties"]["force"]: shape(f["geometry"]) for f in force_areas["features"]}
    union = shapely.union_all(list(areas.values()))
    # Neighbours share their edges: no overlap worth a pixel.
    assert sum(a.area for a in areas.values()) / union.area < 1.0005
    outline = shape(_load(OUTLINE)["features"][0]["geometry"])
    assert abs(outline.area - union.area) / union.area < 0.001
    misplaced = []
    for force in FORCES:
        if not force.is_territorial:
            continue
        for town in force.towns:
            point = Point(town.lon, town.lat)
            # Coastal town centres may sit just off a 250 m simplified coast; none may lie in another force.
            if areas[force.slug].distance(point) > 0.01 or any(
                    a.contains(point) for slug, a in areas.items() if slug != force.slug):
                misplaced.append((force.slug, town.name))
    assert not misplaced, misplaced


def test_places_name_every_district_once_largest_first(places):
    features = places["features"]
    districts = [f["properties"] for f in features if f["properties"]["kind"] == "district"]
    assert len(districts) == len({d["code"] for d in districts}) == DISTRICTS_2013
    table = force_of_district()
    assert all(d["force"] == table[d["code"]] for d in districts)
    ranks = [f["properties"]["rank"] for f in features]
    assert ranks == list(range(1, len(features) + 1))
    top = [f["properties"]["name"] for f in features[:8]]
    assert "London" in top and "Birmingham" in top and "Manchester" in top
    zooms = [f["properties"]["min_zoom"] for f in features]
    assert zooms == sorted(zooms)
    by_name = {f["properties"]["name"]: f for f in features}
    assert by_name["Bristol"]["properties"]["code"] == "E06000023"
    lon, lat = by_name["Luton"]["geometry"]["coordinates"]
    assert abs(lon - -0.42) < 0.02 and abs(lat - 51.88) < 0.02  # the town centre, not the district's middle


# ----- the API ----------------------------------------------------------------------------------------------


def _street_rows(month: str, rows: list[tuple[str | None, float | None, float | None]]) -> pa.Table:
    return pa.table({"location": [r[0] for r in rows], "wgs84_lon": [r[1] for r in rows],
                     "wgs84_lat": [r[2] for r in rows], "month": [month] * len(rows)})


BEDFORD = [
    ("On or near High Street", -0.4660, 52.1360), ("On or near High Street", -0.4662, 52.1366),
    ("On or near High Street", -0.4664, 52.1372), ("On or near  Silver   Street", -0.4690, 52.1365),
    ("On or near Parking Area", -0.4700, 52.1350), ("On or near ", -0.4710, 52.1340),
    ("No Location", None, None), ("On or near Supermarket", -0.4720, 52.1330),
    ("On or near Bedford (Station)", -0.4790, 52.1360),
]


@pytest.fixture
def client(settings):
    write_deltalake(str(settings.bronze("police_uk", "street")), _street_rows("2024-01", BEDFORD),
                    partition_by=["month"])
    app = FastAPI()
    app.include_router(geography_router(settings, StreetIndex(settings, refresh_seconds=0)))
    return TestClient(app)


def test_street_names():
    assert street_name("On or near  St  Pancras International (Station)") == "St Pancras International (Station)"
    assert street_name("On or near High Street") == "High Street"
    assert street_name("On or near ") is None
    assert street_name("No Location") is None
    assert street_name(None) is None
    assert all(street_name(f"On or near {t}") is None for t in PLACE_TYPES)


@pytest.mark.parametrize("name", ["outline", "forces", "places"])
def test_reference_endpoints_are_public_cacheable_and_attributed(client, name):
    r = client.get(f"/api/geography/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/geo+json"
    assert "public" in r.headers["cache-control"] and "max-age" in r.headers["cache-control"]
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["features"]
    assert "Open Government Licence" in body["attribution"]
    again = client.get(f"/api/geography/{name}", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content


def test_forces_endpoint_names_each_force_by_slug(client):
    slugs = [f["properties"]["force"] for f in client.get("/api/geography/forces").json()["features"]]
    assert sorted(slugs) == TERRITORIAL


def test_streets_in_a_bbox_named_once_longest_first_without_counts(client, settings):
    r = client.get("/api/geography/streets", params={"bbox": "-0.49,52.12,-0.45,52.15"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "data.police.uk" in body["attribution"]
    names = [f["properties"]["name"] for f in body["features"]]
    assert names == ["High Street", "Bedford (Station)", "Silver Street"]
    high = body["features"][0]
    assert high["properties"] == {"name": "High Street", "points": 3}
    assert high["geometry"]["coordinates"] == [-0.4662, 52.1366]  # the middle one of its points
    assert client.get("/api/geography/streets", params={"bbox": "-0.49,52.12,-0.45,52.15", "limit": 1}).json()[
        "numberReturned"] == 1
    assert client.get("/api/geography/streets", params={"bbox": "-0.40,52.12,-0.30,52.15"}).json()["features"] == []

    # A new month lands: the next request sees its streets.
    write_deltalake(str(settings.bronze("police_uk", "street")),
                    _street_rows("2024-02", [("On or near Castle Lane", -0.4600, 52.1340)]), mode="append",
                    partition_by=["month"])
    names = [f["properties"]["name"] for f in client.get(
        "/api/geography/streets", params={"bbox": "-0.49,52.12,-0.45,52.15"}).json()["features"]]
    assert "Castle Lane" in names


@pytest.mark.parametrize(("bbox", "status", "words"), [
    ("-1.0,51.5,0.5,52.5", 413, "at most"),
    ("a,b,c,d", 422, "four numbers"),
    ("-0.4,52.2,-0.5,52.1", 422, "minimum must be below"),
    ("10,10,10.01,10.01", 400, "outside England and Wales"),
])
def test_streets_refuse_bad_or_large_bboxes(client, bbox, status, words):
    r = client.get("/api/geography/streets", params={"bbox": bbox})
    assert r.status_code == status and words in r.json()["detail"], r.text


def test_streets_without_a_bronze_table_are_empty(settings):
    app = FastAPI()
    app.include_router(geography_router(settings))
    r = TestClient(app).get("/api/geography/streets", params={"bbox": "-0.49,52.12,-0.45,52.15"})
    assert r.status_code == 200 and r.json()["features"] == []
