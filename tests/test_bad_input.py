"""Bad input costs only itself: each bad line is quarantined with its file, line and reason, the rest loads."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from crimelake import lake
from crimelake.ingest.engine import LANDING, ingest_partition
from crimelake.ingest.forces import wrong_force
from crimelake.ingest.landing import landed_months
from crimelake.reference import boundary
from tests.factories import contract, csv_text, land, street_row, street_rows

STREET = contract("police_uk", "street")
# What belongs to no contract of a source is reported by one of its contracts, the first by entity name.
OUTCOMES = contract("police_uk", "outcomes")
FILE = "landing/police_uk/2024-03/2024-03-bedfordshire-street.csv"


def quarantined(settings, month="2024-03") -> dict[int, dict]:
    rows = lake.read(settings.quarantine("police_uk", "street"), month=month).to_pylist()
    return {r["_source_line"]: r for r in rows}


def loaded_lines(settings, month="2024-03") -> list[int]:
    return sorted(lake.read(settings.bronze("police_uk", "street"), month=month).column("_source_line").to_pylist())


def test_a_cp1252_byte_and_a_nul_byte_cost_their_lines_only(settings):
    lines = csv_text(STREET, street_rows(6)).encode("utf-8").split(b"\n")
    lines[2] = lines[2].replace(b"High Street", b"High Street \xa3")  # line 3: cp1252 pound sign
    lines[5] = lines[5].replace(b"Burglary", b"Burg\x00lary")  # line 6
    land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv", b"\n".join(lines))
    r = ingest_partition(settings, STREET, "2024-03")
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (6, 4, 2) and r.counts_add_up
    assert not r.rejected
    q = quarantined(settings)
    assert set(q) == {3, 6}
    assert q[3]["reason"].startswith("not valid UTF-8 at byte ") and "(0xa3)" in q[3]["reason"]
    assert q[3]["raw_text"].endswith("High Street \\xa3,E01017540,Bedford 001A,Burglary,Under investigation,")
    assert q[6]["reason"].startswith("NUL byte at byte ")
    assert "Burg\\x00lary" in q[6]["raw_text"]
    assert {row["_source_file"] for row in q.values()} == {FILE}
    assert loaded_lines(settings) == [2, 4, 5, 7]


def test_a_repeated_crime_id_is_quarantined_naming_the_first_line(settings):
    rows = street_rows(3)
    repeats = [dict(rows[1]) for _ in range(25)]
    asb = street_row(**{"Crime ID": "", "Crime type": "Anti-social behaviour", "Last outcome category": ""})
    land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv", csv_text(STREET, rows + repeats + [asb] * 4))
    r = ingest_partition(settings, STREET, "2024-03")
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (32, 7, 25) and r.counts_add_up
    q = quarantined(settings)
    assert set(q) == set(range(5, 30))
    assert all(f"duplicates the row at {FILE} line 3" in row["reason"] for row in q.values())
    # The first occurrence stays; anti-social behaviour rows (no Crime ID) are not duplicates of each other.
    assert loaded_lines(settings) == [2, 3, 4, 30, 31, 32, 33]


def test_the_same_crime_id_in_another_force_file_of_the_month_is_a_duplicate(settings):
    land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv", csv_text(STREET, street_rows(2)))
    kent = street_rows(1, **{"Reported by": "Kent Police", "Falls within": "Kent Police"})
    land(settings, STREET, "2024-03", "2024-03-kent-street.csv", csv_text(STREET, kent))
    r = ingest_partition(settings, STREET, "2024-03")
    assert (r.rows_loaded, r.rows_quarantined) == (2, 1)
    [row] = quarantined(settings).values()
    assert row["_source_file"].endswith("2024-03-kent-street.csv") and f"{FILE} line 2" in row["reason"]


def test_a_corrected_redelivery_is_not_a_duplicate_of_the_file_it_corrects(settings):
    import os

    old = land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv", csv_text(STREET, street_rows(3)))
    new = land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.v2.csv",
               csv_text(STREET, street_rows(3, **{"Crime type": "Robbery"})))
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))
    os.utime(new, ns=(2_000_000_000, 2_000_000_000))
    r = ingest_partition(settings, STREET, "2024-03")
    assert (r.rows_loaded, r.rows_quarantined) == (3, 0)
    assert [f.status for f in r.files if f.file.endswith("street.csv")] == ["superseded"]


def test_rows_of_another_force_in_a_force_file_are_quarantined_naming_both(settings):
    city = {"Reported by": "City of London Police", "Falls within": "City of London Police",
            "Longitude": "-0.0932", "Latitude": "51.5155", "LSOA code": "E01000001"}
    cheshire = {**city, "Falls within": "Cheshire Constabulary"}
    rows = street_rows(2, **city) + [street_row(**{**cheshire, "Crime ID": f"{k + 10:064x}"}) for k in range(300)]
    land(settings, STREET, "2024-03", "2024-03-city-of-london-street.csv", csv_text(STREET, rows))
    r = ingest_partition(settings, STREET, "2024-03", write=False)
    assert (r.rows_loaded, r.rows_quarantined) == (2, 300)
    assert r.quarantine_reasons == {"Falls within: is not the file's force": 300}


@pytest.mark.parametrize("slug,name,ok", [
    ("metropolitan", "Metropolitan Police Service", True),
    ("devon-and-cornwall", "Devon & Cornwall Police", True),
    ("devon-and-cornwall", "Devon and Cornwall Police", True),
    ("dyfed-powys", "Dyfed Powys Police", True),
    ("city-of-london", "Metropolitan Police Service", False),
    ("btp", "British Transport Police", True),
    ("btp", "Kent Police", True),  # the railway police work in every force area
    ("btp", "Police Scotland", False),
    ("kent", "British Transport Police", False),
])
def test_force_names_are_matched_by_force_not_by_spelling(slug, name, ok):
    w = wrong_force(pa.array([name]), slug)
    assert w.mask.tolist() == [not ok]


PLACES = {  # (lon, lat), inside England and Wales?
    "Glasgow": (-4.2518, 55.8642, False),
    "Belfast": (-5.9301, 54.5973, False),
    "Douglas, Isle of Man": (-4.4821, 54.1523, False),
    "Calais": (1.8587, 50.9513, False),
    "Gretna": (-3.0656, 54.9946, False),
    "Berwick-upon-Tweed": (-2.0050, 55.7710, True),
    "Holyhead, Anglesey": (-4.6330, 53.3090, True),
    "Penzance": (-5.5371, 50.1186, True),
    "Dover": (1.3134, 51.1279, True),
    "Hugh Town, Isles of Scilly": (-6.3166, 49.9143, True),
    "Kielder": (-2.5800, 55.2300, True),
}


def test_the_boundary_keeps_neighbours_out_and_the_edges_of_england_and_wales_in():
    lon, lat, expected = (np.array(v) for v in zip(*PLACES.values(), strict=True))
    assert dict(zip(PLACES, boundary.contains(lon, lat).tolist(), strict=True)) == dict(
        zip(PLACES, expected.tolist(), strict=True))


def test_an_area_code_places_a_row_by_its_country_where_present():
    lon = np.array([-4.2518, -4.2518, -0.1, np.nan])
    lat = np.array([55.8642, 55.8642, 51.5, np.nan])
    codes = pa.array(["E01000001", None, "S01000001", None])
    assert boundary.inside(lon, lat, codes).tolist() == [True, False, False, False]
    # A code cannot vouch for coordinates nowhere near Britain.
    assert boundary.inside(np.array([12.5]), np.array([41.9]), pa.array(["E01000001"])).tolist() == [False]


def test_rows_without_an_area_code_outside_england_and_wales_are_quarantined(settings):
    places = {k: v for k, v in PLACES.items()}
    rows = [street_row(**{"Crime ID": f"{k + 1:064x}", "Longitude": str(x), "Latitude": str(y), "LSOA code": "",
                          "LSOA name": ""}) for k, (x, y, _) in enumerate(places.values())]
    land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv", csv_text(STREET, rows))
    r = ingest_partition(settings, STREET, "2024-03", write=False)
    assert r.counts_add_up
    outside = [name for name, (_, _, inside) in places.items() if not inside]
    assert r.rows_quarantined == len(outside) == r.quarantine_reasons["Longitude/Latitude: lies outside"]


def test_a_badly_named_month_folder_is_rejected_and_holds_nothing_back(settings):
    land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv", csv_text(STREET, street_rows(2)))
    land(settings, STREET, "2023-13", "2023-13-bedfordshire-street.csv", csv_text(STREET, street_rows(2)))
    land(settings, STREET, "march", "2024-03-kent-street.csv", csv_text(STREET, street_rows(1)))
    (settings.landing_dir("police_uk") / "notes.txt").write_text("not a month\n")
    assert landed_months(settings, "police_uk") == ["2024-03"]
    r = ingest_partition(settings, STREET, "2024-03")
    assert r.rows_loaded == 2 and r.counts_add_up and not r.rejected
    r = ingest_partition(settings, OUTCOMES, "2024-03")
    reasons = {f.file: f.reason for f in r.rejected}
    assert "folder name '2023-13' is not a month" in reasons["landing/police_uk/2023-13"]
    assert "folder name 'march' is not a month" in reasons["landing/police_uk/march"]
    assert "outside every month folder" in reasons["landing/police_uk/notes.txt"]
    recorded = lake.read(settings.rejected_files("police_uk", LANDING)).to_pylist()
    assert sorted(x["file"] for x in recorded) == sorted(reasons)
    # Once the folder is put right, the record is cleared on the next load.
    (settings.landing_dir("police_uk") / "2023-13").rename(settings.landing_dir("police_uk") / "2023-12")
    (settings.landing_dir("police_uk") / "march").rename(settings.landing_dir("police_uk") / "2024-02")
    (settings.landing_dir("police_uk") / "notes.txt").unlink()
    ingest_partition(settings, OUTCOMES, "2024-03")
    assert lake.read(settings.rejected_files("police_uk", LANDING)).num_rows == 0
    assert landed_months(settings, "police_uk") == ["2023-12", "2024-02", "2024-03"]


def test_a_folder_inside_a_month_folder_is_rejected(settings):
    land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv", csv_text(STREET, street_rows(1)))
    (settings.landing_dir("police_uk", "2024-03") / "extra").mkdir()
    assert ingest_partition(settings, STREET, "2024-03").rows_loaded == 1
    [rej] = ingest_partition(settings, OUTCOMES, "2024-03").rejected
    assert rej.file == "landing/police_uk/2024-03/extra" and "folder inside a month folder" in rej.reason


def test_a_publishers_repeated_rows_are_resolved_and_do_not_hold_the_month_back(settings, monkeypatch):
    # Real data.police.uk months repeat some Crime IDs (Lancashire 2020-03: 1,148 of them, some whole lines):
    # each is kept once and the repeats quarantined as duplicates, without counting against the share of rows a
    # month may lose, so the month is committed.
    from crimelake.ingest import engine
    from orchestration.defs.ingest.assets import month_suite

    rows = street_rows(100)
    land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv",
         csv_text(STREET, rows + [dict(r) for r in rows[:12]]))
    r = ingest_partition(settings, STREET, "2024-03", validate=month_suite(STREET))
    assert not r.held_back and r.validation.passed
    assert (r.rows_loaded, r.rows_quarantined, r.rows_duplicate) == (100, 12, 12) and r.counts_add_up
    assert lake.read(settings.bronze("police_uk", "street")).num_rows == 100

    # The suite checks the rows as resolved: a repeat the resolution missed fails its uniqueness expectation.
    monkeypatch.setattr(engine, "split_duplicates", lambda table, contract, texts: (table, table.slice(0, 0)))
    missed = ingest_partition(settings, STREET, "2024-03", validate=month_suite(STREET))
    assert missed.held_back and not missed.validation.passed
    # A failing suite reports its counts: 12 values each held by two rows.
    unique = missed.validation.failed("expect_column_values_to_be_unique", "crime_id")
    assert unique and unique[0].observed["unexpected_count"] == 24
    # The month's bronze file, written while the suite ran, was deleted uncommitted: bronze holds what it held.
    bronze = settings.bronze("police_uk", "street")
    assert lake.read(bronze).num_rows == 100
    on_disk = {str(p) for p in bronze.rglob("*.parquet")}
    assert on_disk == set(DeltaTable(str(bronze)).file_uris())
