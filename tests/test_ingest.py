"""Ingest engine: nothing lost, every defect quarantined with a reason, idempotent, re-deliveries handled."""

from __future__ import annotations

import os

import h3
import pytest

from crimelake import lake
from crimelake.ingest.engine import ingest_partition
from tests.factories import STREET_ID, contract, csv_text, land, rms_ho_row, street_row, street_rows

STREET = contract("police_uk", "street")
RMS = contract("force_rms_ho", "crimes")
CARE = contract("social_care", "indicators")


def quarantine(settings, c, month="2024-03"):
    return lake.read(settings.quarantine(c.source, c.entity), month=month).to_pylist()


def test_defective_rows_are_quarantined_with_line_and_reason(settings):
    rows = [
        street_row(),
        street_row(**{"Crime type": "Cyber crime"}),
        street_row(**{"Longitude": "12.5", "Latitude": "41.9"}),
        street_row(**{"Month": "2024-02"}),
        street_row(**{"Longitude": "abc"}),
        street_row(**{"Crime ID": "", "Crime type": "Anti-social behaviour", "Longitude": "", "Latitude": "",
                      "Location": "No location", "LSOA code": "", "LSOA name": ""}),
    ]
    land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv", csv_text(STREET, rows))
    r = ingest_partition(settings, STREET, "2024-03")
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (6, 2, 4)
    assert r.counts_add_up
    q = {row["_source_line"]: row for row in quarantine(settings, STREET)}
    assert set(q) == {3, 4, 5, 6}
    assert "label 'Cyber crime' is not mapped by contract police_uk_street@1.0.0" in q[3]["reason"]
    assert "lies outside England and Wales" in q[4]["reason"]
    assert "belongs to 2024-02, not the file's month 2024-03" in q[5]["reason"]
    assert "Longitude: 'abc' is not a valid number" in q[6]["reason"]
    assert q[3]["raw_text"].startswith(STREET_ID) and "Cyber crime" in q[3]["raw_text"]
    assert all(row["_source_file"] == "landing/police_uk/2024-03/2024-03-bedfordshire-street.csv" for row in q.values())
    bronze = lake.read(settings.bronze("police_uk", "street"), month="2024-03")
    assert bronze.column("_source_line").to_pylist() == [2, 7]
    # A row with no location is a valid record: loaded without a cell, as data.police.uk publishes it.
    assert bronze.column("h3_cell").to_pylist()[1] is None
    cell = bronze.column("h3_cell")[0].as_py()
    assert h3.get_resolution(cell) == settings.h3_resolution
    assert bronze.column("force").to_pylist() == ["bedfordshire", "bedfordshire"]
    assert bronze.column("_contract").to_pylist() == ["police_uk_street@1.0.0"] * 2


def test_british_national_grid_is_reprojected_and_required_location_enforced(settings):
    rows = [
        rms_ho_row("BD/0000001/24"),
        rms_ho_row("BD/0000002/24", EASTING="", NORTHING=""),
        rms_ho_row("BD/0000003/24", HO_CODE="999X"),
        rms_ho_row("BD/0000004/24", REC_DATE="31/02/2024"),
        rms_ho_row("BD/0000001/24"),
        rms_ho_row("BD/0000005/24", KNIFE_FLAG="Y", HO_CODE="010D"),
    ]
    land(settings, RMS, "2024-03", "bedfordshire-rms-2024-03.csv", csv_text(RMS, rows, newline="\r\n"))
    r = ingest_partition(settings, RMS, "2024-03")
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (6, 2, 4)
    reasons = {row["_source_line"]: row["reason"] for row in quarantine(settings, RMS)}
    assert "EASTING" in reasons[3] and "location missing" in reasons[3]
    assert "'999X' is not mapped" in reasons[4]
    assert "REC_DATE: '31/02/2024' is not a valid date" in reasons[5]
    assert "duplicates the row at landing/force_rms_ho/2024-03/bedfordshire-rms-2024-03.csv line 2" in reasons[6]
    b = lake.read(settings.bronze("force_rms_ho", "crimes"), month="2024-03").to_pylist()
    # EPSG:27700 (504900, 249700) is in Bedford, about 0.47 W 52.13 N.
    assert b[0]["wgs84_lon"] == pytest.approx(-0.466, abs=0.01)
    assert b[0]["wgs84_lat"] == pytest.approx(52.13, abs=0.01)
    assert b[0]["offence_desc"] == "Theft – shop"
    assert [x["knife_enabled"] for x in b] == [False, True]
    assert str(b[0]["recorded_date"]) == "2024-03-05"


def test_unsuppressed_small_count_is_a_disclosure_breach_and_quarantined(settings):
    header = ",".join(CARE.header)
    body = [
        "E01017540,Bedford 001A,E06000055,2024-Q2,children_in_need_referrals,12",
        "E01017541,Bedford 001B,E06000055,2024-Q2,children_in_need_referrals,c",
        "E01017542,Bedford 001C,E06000055,2024-Q2,children_in_need_referrals,3",
        "E01017543,Bedford 001D,E06000055,2024-Q2,children_in_need_referrals,0",
    ]
    land(settings, CARE, "2024-04", "bedford-social-care-2024-Q2.csv", "\n".join([header, *body]) + "\n")
    r = ingest_partition(settings, CARE, "2024-04")
    assert (r.rows_loaded, r.rows_quarantined) == (3, 1)
    q = quarantine(settings, CARE, "2024-04")
    assert "unsuppressed count 3 below 5" in q[0]["reason"]
    b = lake.read(settings.bronze("social_care", "indicators"), month="2024-04")
    assert b.column("count").to_pylist() == [12, None, 0]
    assert b.column("count_suppressed").to_pylist() == [False, True, False]


def test_rerunning_a_month_changes_nothing(settings):
    land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv", csv_text(STREET, street_rows(3)))
    first = ingest_partition(settings, STREET, "2024-03")
    again = ingest_partition(settings, STREET, "2024-03")
    path = settings.bronze("police_uk", "street")
    assert again.bronze_version == first.bronze_version + 1
    now = lake.read(path).drop_columns(["_ingest_run_id", "_ingested_at"])
    before = lake.read(path, version=first.bronze_version).drop_columns(["_ingest_run_id", "_ingested_at"])
    assert now.equals(before)
    assert now.num_rows == 3


def test_other_months_are_untouched_when_one_is_replaced(settings):
    land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv", csv_text(STREET, [street_row()]))
    land(settings, STREET, "2024-04", "2024-04-bedfordshire-street.csv",
         csv_text(STREET, street_rows(2, Month="2024-04")))
    ingest_partition(settings, STREET, "2024-03")
    ingest_partition(settings, STREET, "2024-04")
    ingest_partition(settings, STREET, "2024-03")
    months = lake.read(settings.bronze("police_uk", "street")).column("month").to_pylist()
    assert sorted(months) == ["2024-03", "2024-04", "2024-04"]


def test_duplicate_delivery_counts_once_and_is_recorded(settings):
    text = csv_text(STREET, street_rows(2))
    land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv", text)
    land(settings, STREET, "2024-03", "2024-03-bedfordshire-street (1).csv", text)
    r = ingest_partition(settings, STREET, "2024-03")
    assert r.rows_loaded == 2
    status = {f.file.rsplit("/", 1)[1]: (f.status, f.reason) for f in r.files}
    assert status["2024-03-bedfordshire-street (1).csv"] == (
        "duplicate", "identical to 2024-03-bedfordshire-street.csv (same SHA-256)")
    rejected = lake.read(settings.rejected_files("police_uk", "street"), month="2024-03").to_pylist()
    assert [x["status"] for x in rejected] == ["duplicate"]


def test_corrected_redelivery_replaces_the_rows_of_the_file_it_corrects(settings):
    old = land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv",
               csv_text(STREET, street_rows(3, **{"Crime type": "Drugs"})))
    ingest_partition(settings, STREET, "2024-03")
    new = land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.v2.csv",
               csv_text(STREET, street_rows(2, **{"Crime type": "Robbery"})))
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))
    os.utime(new, ns=(2_000_000_000, 2_000_000_000))
    r = ingest_partition(settings, STREET, "2024-03")
    bronze = lake.read(settings.bronze("police_uk", "street"), month="2024-03")
    assert bronze.column("crime_type").to_pylist() == ["Robbery", "Robbery"]
    superseded = [f for f in r.files if f.status == "superseded"]
    assert len(superseded) == 1 and "corrected by newer delivery 2024-03-bedfordshire-street.v2.csv" in superseded[0].reason


def test_unreadable_file_is_rejected_whole_while_other_forces_load(settings):
    land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv", csv_text(STREET, [street_row()]))
    land(settings, STREET, "2024-03", "2024-03-cheshire-street.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    land(settings, STREET, "2024-03", "2024-03-kent-street.csv", "Crime ID,Month,Extra\n1,2,3\n")
    land(settings, STREET, "2024-03", "2024-03-essex-street.csv", b"")
    land(settings, STREET, "2024-03", "2024-03-atlantis-street.csv", csv_text(STREET, [street_row()]))
    land(settings, STREET, "2024-03", "2024-02-surrey-street.csv", csv_text(STREET, [street_row()]))
    r = ingest_partition(settings, STREET, "2024-03")
    assert r.rows_loaded == 1
    reasons = {f.file.rsplit("/", 1)[1]: f.reason for f in r.rejected}
    assert "not a text file" in reasons["2024-03-cheshire-street.csv"]
    assert "header does not match contract police_uk_street@1.0.0" in reasons["2024-03-kent-street.csv"]
    assert "empty file" in reasons["2024-03-essex-street.csv"]
    assert "unknown force slug 'atlantis'" in reasons["2024-03-atlantis-street.csv"]
    assert "named for 2024-02 but landed in the 2024-03 folder" in reasons["2024-02-surrey-street.csv"]
    table = lake.read(settings.rejected_files("police_uk", "street"), month="2024-03")
    assert table.num_rows == 5


def test_a_file_matching_no_contract_is_reported_once(settings):
    land(settings, STREET, "2024-03", "2024-03-bedfordshire-street.csv", csv_text(STREET, [street_row()]))
    land(settings, STREET, "2024-03", "notes.txt", "hello\n")
    reports = [ingest_partition(settings, contract("police_uk", e), "2024-03")
               for e in ("street", "outcomes", "stop_and_search")]
    named = [f.file for r in reports for f in r.rejected]
    assert named == ["landing/police_uk/2024-03/notes.txt"]


def test_repeated_keys_across_files_are_quarantined_naming_the_first_row_in_file_order(settings):
    land(settings, RMS, "2024-03", "bedfordshire-rms-2024-03.csv",
         csv_text(RMS, [rms_ho_row("BD/0000001/24"), rms_ho_row("BD/0000002/24"), rms_ho_row("BD/0000001/24")]))
    land(settings, RMS, "2024-03", "cheshire-rms-2024-03.csv",
         csv_text(RMS, [rms_ho_row("BD/0000002/24"), rms_ho_row("BD/0000003/24")]))
    r = ingest_partition(settings, RMS, "2024-03")
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (5, 3, 2)
    assert r.counts_add_up
    per_file = {f.file.rsplit("/", 1)[1]: (f.rows_loaded, f.rows_quarantined) for f in r.files}
    assert per_file == {"bedfordshire-rms-2024-03.csv": (2, 1), "cheshire-rms-2024-03.csv": (1, 1)}
    q = quarantine(settings, RMS)
    beds = "landing/force_rms_ho/2024-03/bedfordshire-rms-2024-03.csv"
    assert [(x["_source_file"].rsplit("/", 1)[1], x["_source_line"], x["reason"]) for x in q] == [
        ("bedfordshire-rms-2024-03.csv", 4, f"CRIME_REF: 'BD/0000001/24' duplicates the row at {beds} line 2"),
        ("cheshire-rms-2024-03.csv", 2, f"CRIME_REF: 'BD/0000002/24' duplicates the row at {beds} line 3"),
    ]
    assert [x["supplier"] for x in q] == ["bedfordshire", "cheshire"]
    assert q[1]["raw_text"].startswith("BD/0000002/24,")
    bronze = lake.read(settings.bronze("force_rms_ho", "crimes"), month="2024-03")
    # The Delta writer may lay a month's batches out in any order: which rows were kept is what counts.
    assert sorted(bronze.column("crime_ref").to_pylist()) == ["BD/0000001/24", "BD/0000002/24", "BD/0000003/24"]


def test_h3_cells_are_computed_once_per_distinct_point_with_the_same_result():
    import numpy as np

    from crimelake.ingest.validate import h3_cells

    lat = np.array([52.136, np.nan, 51.5, 52.136, 51.5, 50.1])
    lon = np.array([-0.466, -0.1, np.nan, -0.466, -0.12, -5.5])
    want = [None if np.isnan(a) or np.isnan(b) else h3.latlng_to_cell(a, b, 9) for a, b in zip(lat, lon, strict=True)]
    assert h3_cells(lat, lon, 9).to_pylist() == want


def test_h3_cells_over_whole_arrays_equal_the_h3_library_point_by_point():
    import numpy as np

    from crimelake.ingest.validate import h3_cells

    rng = np.random.default_rng(11)
    # England and Wales and a margin, points shared by several rows, and the poles and the antimeridian.
    lat = np.r_[rng.uniform(49.5, 56.0, 3000), [90.0, -90.0, 0.0, 51.5] * 2]
    lon = np.r_[rng.uniform(-6.5, 2.0, 3000), [0.0, 0.0, 180.0, -0.1275] * 2]
    for resolution in (0, 7, 9, 12, 15):
        want = [h3.latlng_to_cell(a, b, resolution) for a, b in zip(lat, lon, strict=True)]
        assert h3_cells(lat, lon, resolution).to_pylist() == want


def test_a_pattern_is_matched_once_per_distinct_value_with_the_rows_answers_unchanged():
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from crimelake.ingest.validate import matches

    rng = np.random.default_rng(5)
    codes = ["E01000001", "W01000002", "E0100003", "X01000004", "e01000005", "", "E01000006 "]
    few = pa.array([None if k == len(codes) else codes[k] for k in rng.integers(0, len(codes) + 1, 20_000)])
    ids = pa.array([f"{k:09d}" if k % 7 else None for k in range(20_000)])
    for arr in (few, ids, few.slice(0, 100), few.slice(5000)):
        for pattern in (r"^[EW]0[0-9]{7}$", r"^[0-9]+$", "0"):
            assert matches(arr, pattern).equals(pc.match_substring_regex(arr, pattern))


def test_expectations_read_an_arrow_partition_as_they_read_its_pandas_frame(settings):
    from data_contracts.expectations import validate_frame

    rows = [rms_ho_row(f"BD/000000{i}/24") for i in range(6)] + [rms_ho_row("BD/0000001/24", STATUS="OPEN")]
    land(settings, RMS, "2024-03", "bedfordshire-rms-2024-03.csv", csv_text(RMS, rows))
    r = ingest_partition(settings, RMS, "2024-03", write=False)
    table = r.table.append_column("crime_ref_copy", r.table.column("crime_ref"))
    table = table.set_column(table.schema.get_field_index("crime_ref"), "crime_ref",
                             table.column("status"))  # every value repeated: the uniqueness rule must fail
    from_arrow = validate_frame(RMS, table, rows_read=r.rows_read, rows_quarantined=r.rows_quarantined)
    from_pandas = validate_frame(RMS, table.to_pandas(), rows_read=r.rows_read, rows_quarantined=r.rows_quarantined)
    assert not from_arrow.passed
    assert from_arrow.failed(column="crime_ref")
    assert from_arrow.to_metadata() == from_pandas.to_metadata()


def test_text_values_are_trimmed_and_emptied_to_null_as_by_arrow_alone():
    import pyarrow as pa
    import pyarrow.compute as pc

    from crimelake.ingest import coerce

    values = ["a", "", " b", "c ", "\u00a0d", "e\u3000", "\t", "f g", None, "é", "h\u00e9", "  ", "x"]
    for arr in (pa.array(values, pa.string()), pa.array(values, pa.string()).slice(2),
                pa.array(["a", "", "b"], pa.string()), pa.array(["a", "b"], pa.string()), pa.array([], pa.string())):
        trimmed = pc.utf8_trim_whitespace(arr)
        expected = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
        assert coerce.text(arr).to_pylist() == expected.to_pylist()
    assert coerce.text(pa.array(["a", "", "b"], pa.string())).to_pylist() == ["a", None, "b"]


def test_a_timestamp_is_outside_the_month_exactly_when_its_uk_wall_clock_month_differs():
    from datetime import UTC, datetime, timedelta

    import pyarrow as pa
    import pyarrow.compute as pc

    from crimelake.ingest import coerce
    from data_contracts.loader import Column

    col = Column("reported_at", "Reported at", "timestamp")
    # Every 17 minutes across a year end, both clock changes and the month ends between them.
    first = datetime(2023, 12, 31, 20, tzinfo=UTC)
    values = pa.array([first + timedelta(minutes=17 * k) for k in range(30000)] + [None], pa.timestamp("us", tz="UTC"))
    raw = pa.array(["x"] * len(values))
    months = coerce.month_of(col, values, raw, None)
    for month in ("2023-12", "2024-01", "2024-03", "2024-04", "2024-10"):
        expected = pc.fill_null(pc.and_(pc.is_valid(months), pc.not_equal(months, month)), False)
        assert coerce.outside_month(col, values, raw, None, month).equals(expected), month
    # 00:30 on 1 April in London is still 31 March in UTC.
    april = pa.array([datetime(2024, 3, 31, 23, 30, tzinfo=UTC)], pa.timestamp("us", tz="UTC"))
    assert coerce.outside_month(col, april, raw.slice(0, 1), None, "2024-04").to_pylist() == [False]


def test_impossible_calendar_dates_are_invalid_whichever_rows_repeat_them():
    import pyarrow as pa

    from crimelake.ingest import coerce
    from data_contracts.loader import Column

    col = Column("recorded_date", "Recorded date", "date", fmt="%d/%m/%Y")
    text = pa.array(["31/02/2024", "28/02/2024", "29/02/2023", "29/02/2024", None, "31/02/2024", "28/02/2024"])
    values, bad = coerce.convert(col, text)
    assert bad.to_pylist() == [True, False, True, False, False, True, False]
    assert [v and v.isoformat() for v in values.to_pylist()] == [
        None, "2024-02-28", None, "2024-02-29", None, None, "2024-02-28"]


def test_numbers_read_whole_by_arrow_equal_those_read_by_the_pattern():
    """The quick path (Arrow's cast of the whole column) and the pattern agree on every value: generated text of
    digits, signs, points, exponents, NaN and infinity spellings, blanks and other bytes, read as numbers and as
    integers, against Python's own reading of text of the pattern's form."""
    import random
    import re

    import pyarrow as pa

    from crimelake.ingest import coerce

    rng = random.Random(7)
    pieces = ["0", "1", "9", "12", "007", "+", "-", ".", "e", "E", "e+", "e-", "5e", "nan", "NaN", "inf", "Infinity",
              "x", "_", " ", ",", "٣", "0x1", "1" * 19, "9" * 20, "400"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 4))) for _ in range(20000)]
    texts += ["1", "-1.5", "+1.5", ".5", "5.", "1e5", "+.5e+3", "1e400", "-0", "+5", "9223372036854775807",
              "-9223372036854775808", "9223372036854775808", "-9223372036854775809", "+9223372036854775807"]

    def expected(pattern: str, kind: type, text: str):
        if not re.fullmatch(pattern.strip("^$"), text, re.ASCII):
            return None, True
        value = kind(text)
        if kind is int and not -(2**63) <= value <= 2**63 - 1:
            return None, True
        return value, False

    for pattern, kind, target in ((coerce._NUMBER, float, pa.float64()), (coerce._INTEGER, int, pa.int64())):
        clean = [t for t in texts if re.fullmatch(pattern.strip("^$"), t, re.ASCII) and expected(pattern, kind, t)[0]
                 is not None]
        # Every value valid (the quick path), one value invalid (the pattern), and every mix between.
        for sample in (clean[:500], clean[:500] + ["x"], texts, [None, *clean[:50], None]):
            values, bad = coerce._number(pa.array(sample, pa.string()), pattern, target)
            want = [(None, False) if t is None else expected(pattern, kind, t) for t in sample]
            assert values.to_pylist() == [v for v, _ in want], pattern
            assert bad.to_pylist() == [b for _, b in want], pattern
        assert clean, pattern


def test_an_integer_too_large_for_64_bits_costs_its_row_not_the_file(settings):
    rows = [rms_ho_row("BD/0000001/24"), rms_ho_row("BD/0000002/24", EASTING="99999999999999999999"),
            rms_ho_row("BD/0000003/24", EASTING="+504900")]
    land(settings, RMS, "2024-03", "bedfordshire-rms-2024-03.csv", csv_text(RMS, rows))
    r = ingest_partition(settings, RMS, "2024-03")
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (3, 2, 1)
    q = quarantine(settings, RMS)
    assert [row["_source_line"] for row in q] == [3]
    assert "EASTING: '99999999999999999999' is not a valid integer" in q[0]["reason"]
    b = lake.read(settings.bronze("force_rms_ho", "crimes"), month="2024-03").to_pylist()
    assert sorted(x["easting"] for x in b) == [504900, 504900]


def test_kept_rows_as_slices_equal_the_filtered_rows():
    import numpy as np
    import pyarrow as pa

    from crimelake.ingest.validate import MAX_RUNS, kept_rows

    rng = np.random.default_rng(3)
    n = 5000
    table = pa.table({"i": np.arange(n), "s": pa.array([f"v{k}" if k % 7 else None for k in range(n)])})
    masks = [np.ones(n, bool), np.zeros(n, bool), rng.random(n) > 0.001, rng.random(n) > 0.5]
    masks += [np.r_[np.zeros(3, bool), np.ones(n - 3, bool)], np.r_[np.ones(n - 1, bool), [False]]]
    for kept in masks:
        got = kept_rows(table, kept)
        assert got.equals(table.filter(pa.array(kept))), kept.sum()
        runs = np.count_nonzero(np.diff(np.r_[0, kept.astype(np.int8)]) == 1)
        # A slice per run of kept rows, sharing the table's buffers; a table of many runs is filtered into one copy.
        if 0 < runs <= MAX_RUNS:
            assert got.column("i").num_chunks == runs
        elif runs > MAX_RUNS:
            assert got.column("i").num_chunks == 1
