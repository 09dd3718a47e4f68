"""Ingest does each costly thing once, with the same result: the frame handed to the expectations is not
fingerprinted, each file is hashed once, and lines with quotes are read together as each would be read alone."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from crimelake import lake
from crimelake.ingest.engine import ingest_partition
from crimelake.reference.forces import force_by_slug
from tests.factories import contract, csv_text, land, rms_ho_row, street_row

RMS = contract("force_rms_ho", "crimes")
STREET = contract("police_uk", "street")


def test_expectations_still_fail_on_the_loaded_rows_without_fingerprinting_them(settings, monkeypatch):
    from data_contracts.expectations import validate_frame

    rows = [rms_ho_row(f"BD/000000{i}/24") for i in range(6)]
    land(settings, RMS, "2024-03", "bedfordshire-rms-2024-03.csv", csv_text(RMS, rows))
    r = ingest_partition(settings, RMS, "2024-03", write=False)
    validate_frame(RMS, r.table, rows_read=r.rows_read, rows_quarantined=r.rows_quarantined)  # builds the context

    from great_expectations.execution_engine import pandas_execution_engine

    def refuse(df):
        raise AssertionError("the frame was fingerprinted")

    monkeypatch.setattr(pandas_execution_engine, "hash_pandas_dataframe", refuse)
    ok = validate_frame(RMS, r.table, rows_read=r.rows_read, rows_quarantined=r.rows_quarantined)
    assert ok.passed and ok.rows == 6
    repeated = r.table.set_column(r.table.schema.get_field_index("crime_ref"), "crime_ref", r.table.column("status"))
    bad = validate_frame(RMS, repeated, rows_read=r.rows_read, rows_quarantined=r.rows_quarantined)
    assert not bad.passed
    assert bad.failed(expectation="expect_column_values_to_be_unique", column="crime_ref")
    assert bad.failed(expectation="expect_column_values_to_match_regex", column="crime_ref")



def test_each_landed_file_is_hashed_once_and_lineage_names_its_hash(settings, monkeypatch):
    one = csv_text(STREET, [street_row(**{"Crime ID": "b" * 64, "Reported by": "Kent Police",
                                          "Falls within": "Kent Police"})])
    files = {
        "2024-03-bedfordshire-street.csv": csv_text(STREET, [street_row()]),
        "2024-03-kent-street.csv": one,
        "2024-03-kent-street (1).csv": one,  # a byte-identical copy: both are hashed to be compared
        "2024-03-essex-street.csv": b"",  # unreadable: its record still names its hash
        "2024-02-surrey-street.csv": csv_text(STREET, [street_row()]),  # named for another month
    }
    digests = {name: hashlib.sha256(land(settings, STREET, "2024-03", name, text).read_bytes()).hexdigest()
               for name, text in files.items()}
    taken: Counter[str] = Counter()
    real = hashlib.sha256

    class Counting:
        def __init__(self, data=b""):
            self.h = real(data)

        def update(self, data):
            self.h.update(data)

        def hexdigest(self):
            taken[self.h.hexdigest()] += 1
            return self.h.hexdigest()

    monkeypatch.setattr(hashlib, "sha256", Counting)
    r = ingest_partition(settings, STREET, "2024-03")
    monkeypatch.setattr(hashlib, "sha256", real)
    assert r.counts_add_up and r.rows_loaded == 2
    want = Counter(digests.values())  # the two copies share one digest, taken once for each
    assert {d: taken[d] for d in want} == dict(want)
    reported = {f.file.rsplit("/", 1)[1]: f.sha256 for f in r.files}
    assert reported == digests
    bronze = lake.read(settings.bronze("police_uk", "street"), month="2024-03")
    by_file = dict(zip(bronze.column("_source_file").to_pylist(), bronze.column("_source_sha256").to_pylist(),
                       strict=True))
    assert {f.rsplit("/", 1)[1]: h for f, h in by_file.items()} == {
        n: digests[n] for n in ("2024-03-bedfordshire-street.csv", "2024-03-kent-street.csv")}
    rejected = lake.read(settings.rejected_files("police_uk", "street"), month="2024-03").to_pylist()
    assert {x["file"].rsplit("/", 1)[1]: x["sha256"] for x in rejected} == {
        n: digests[n] for n in ("2024-03-kent-street (1).csv", "2024-03-essex-street.csv",
                                "2024-02-surrey-street.csv")}


def test_quoted_lines_read_together_split_as_each_line_alone():
    import random

    from crimelake.ingest.reader import _split, _split_each

    rng = random.Random(11)
    kinds = [
        'a,"b, c",d',
        'a,"b ""c""",d',
        'a,b "c,d',  # a literal quote in an unquoted field
        '"a,b,c',  # a quote left open: with the next quoted line it makes one row of two lines
        'a,b",c',  # closes a quote left open on the line before
        'a,"b"c,d',  # text after a closing quote: strict reading stops
        'a,"b\rc",d',
        "a,b,c",
        '"',
        '""',
        'x,"y',
    ]
    for trial in range(300):
        lines = [rng.choice(kinds) for _ in range(rng.randint(1, 12))]
        assert _split_each(lines, ",") == [_split(line, ",") for line in lines], (trial, lines)


def test_reading_progress_is_logged_by_quarters_and_always_at_the_end():
    from orchestration.defs.ingest.assets import reported

    assert [d for d in range(1, 45) if reported(d, 44)] == [11, 22, 33, 44]
    assert [d for d in range(1, 4) if reported(d, 3)] == [1, 2, 3]
    assert [d for d in range(1, 2) if reported(d, 1)] == [1]


def test_validation_runs_before_the_month_is_written_and_a_failing_month_is_held_back(settings):
    from data_contracts.expectations import validate_frame

    rows = [rms_ho_row(f"BD/000000{i}/24") for i in range(5)] + [rms_ho_row("BD/0000001/24")]
    land(settings, RMS, "2024-03", "bedfordshire-rms-2024-03.csv", csv_text(RMS, rows))
    seen = []

    def validate(r):
        seen.append(r.table)
        return validate_frame(RMS, r.table, rows_read=r.rows_read, rows_quarantined=r.rows_quarantined)

    r = ingest_partition(settings, RMS, "2024-03", validate=validate)
    assert r.validation.rows == 5 and r.validation.rows_quarantined == 1
    # One row in six set aside: the quarantine-share rule fails, and nothing else does.
    assert [f.expectation for f in r.validation.failed()] == ["quarantine_share_to_be_less_than"]
    # The month fails a blocking check: nothing reaches bronze, its five rows are quarantined beside the duplicate.
    assert r.held_back == ["contract_expectations"] and r.rows_loaded == 0 and r.counts_add_up
    assert r.bronze_version is None and not lake.table_exists(settings.bronze("force_rms_ho", "crimes"))
    reasons = lake.read(settings.quarantine("force_rms_ho", "crimes"), month="2024-03").column("reason").to_pylist()
    assert sorted(reasons).count("month held back: contract_expectations") == 5 and len(reasons) == 6
    assert len(seen[0]) == 5

    def broken(r):
        raise RuntimeError("suite could not run")

    with pytest.raises(RuntimeError, match="suite could not run"):
        ingest_partition(settings, RMS, "2024-03", validate=broken)


def _unlogged_files(table) -> set[str]:
    """Data files in a table's folder that no commit of its log ever added: files staged and left behind."""
    import json

    added = {json.loads(line)["add"]["path"] for log in (table / "_delta_log").glob("*.json")
             for line in log.read_text().splitlines() if line.startswith('{"add"')}
    return {str(f.relative_to(table)) for f in table.rglob("*.parquet")} - added


def test_a_months_quarantine_and_rejected_files_are_staged_beside_its_checks_and_left_nowhere(settings):
    """Once the tables exist, a month's quarantine and rejected-files rows are written while its checks run and
    committed after: a month that passes, one held back and one whose checks fail to run each leave every table
    holding the month as judged, and no data file that no commit added."""
    from data_contracts.expectations import validate_frame

    def validate(r):
        return validate_frame(RMS, r.table, rows_read=r.rows_read, rows_quarantined=r.rows_quarantined)

    tables = [settings.bronze("force_rms_ho", "crimes"), settings.quarantine("force_rms_ho", "crimes"),
              settings.rejected_files("force_rms_ho", "crimes")]
    good = [rms_ho_row(f"BD/00000{i:02d}/24") for i in range(40)]
    name = "bedfordshire-rms-2024-03.csv"
    land(settings, RMS, "2024-03", name, csv_text(RMS, good))
    land(settings, RMS, "2024-03", "bedfordshire-rms-2024-03.txt", "not a delivery")
    first = ingest_partition(settings, RMS, "2024-03", validate=validate)
    assert first.rows_loaded == 40 and not first.held_back
    assert all(lake.table_exists(t) for t in tables)

    # The same month again, one row repeated: it passes, and its quarantine holds that row alone.
    land(settings, RMS, "2024-03", name, csv_text(RMS, good + [good[3]]))
    again = ingest_partition(settings, RMS, "2024-03", validate=validate)
    assert again.rows_loaded == 40 and again.rows_quarantined == 1 and not again.held_back
    assert lake.read(tables[1], month="2024-03").num_rows == 1
    assert [_unlogged_files(t) for t in tables] == [set(), set(), set()]

    # Held back: bronze keeps the 40 rows, the quarantine takes the month's rows with the held ones.
    bad = good[:5] + [good[1]] * 2
    land(settings, RMS, "2024-03", name, csv_text(RMS, bad))
    held = ingest_partition(settings, RMS, "2024-03", validate=validate)
    assert held.held_back == ["contract_expectations"] and held.counts_add_up
    assert lake.read(tables[0], month="2024-03").num_rows == 40
    reasons = lake.read(tables[1], month="2024-03").column("reason").to_pylist()
    assert len(reasons) == 7 and reasons.count("month held back: contract_expectations") == 5
    assert [_unlogged_files(t) for t in tables] == [set(), set(), set()]

    def broken(r):
        raise RuntimeError("suite could not run")

    versions = [lake.version(t) for t in tables]
    with pytest.raises(RuntimeError, match="suite could not run"):
        ingest_partition(settings, RMS, "2024-03", validate=broken)
    assert [lake.version(t) for t in tables] == versions
    assert [_unlogged_files(t) for t in tables] == [set(), set(), set()]


def test_files_read_two_at_a_time_give_the_month_read_one_after_another(settings, monkeypatch):
    from crimelake.ingest import engine

    forces = ["bedfordshire", "cheshire", "kent", "essex", "surrey", "dorset"]
    for k, force in enumerate(forces):
        name = force_by_slug(force).name  # each file holds its own force's rows
        rows = [street_row(**{"Crime ID": f"{k}{i:063x}", "Crime type": ["Drugs", "Robbery", "Cyber crime"][i % 3],
                              "Reported by": name, "Falls within": name}) for i in range(40)]
        rows.append(street_row(**{"Crime ID": f"{k}" + "f" * 63, "Reported by": name, "Falls within": name}))
        text = csv_text(STREET, rows)
        if force == "essex":
            text = "\x00binary"
        land(settings, STREET, "2024-03", f"2024-03-{force}-street.csv", text)

    def month(readers: int):
        monkeypatch.setattr(engine, "READERS", readers)
        r = ingest_partition(settings, STREET, "2024-03", run_id="same", write=False)
        lineage = ["_ingested_at"]
        return (r.table.drop_columns(lineage).to_pylist(), [(f.file, f.status, f.rows_read, f.rows_loaded,
                                                             f.rows_quarantined, f.reason) for f in r.files],
                r.quarantine_reasons, r.counts_add_up)

    one, two = month(1), month(2)
    assert one == two
    assert one[3] and len(one[0]) == 5 * (27 + 1)  # a third of each file's rows have an unmapped label
    assert [status for _, status, *_ in one[1]].count("rejected") == 1
