"""Pipeline commands end with what failed and exit non-zero: a file rejected whole, a corrupt archive member."""

from __future__ import annotations

import zipfile

import pytest
from typer.testing import CliRunner

from crimelake.cli import app
from crimelake.police_uk import land
from crimelake.summary import Summary
from tests.factories import contract, csv_text, street_row
from tests.factories import land as land_file

pytestmark = [pytest.mark.integration]


def test_a_file_rejected_whole_fails_the_run_and_is_named_in_the_summary(settings):
    street = contract("police_uk", "street")
    good = [street_row(**{"Crime ID": f"{i:064x}", "Month": "2024-03"}) for i in range(1, 6)]
    land_file(settings, street, "2024-03", "2024-03-bedfordshire-street.csv", csv_text(street, good))
    land_file(settings, street, "2024-03", "2024-03-cheshire-street.csv", "not,the,header\n1,2,3\n")
    result = CliRunner().invoke(app, ["run", "--home", str(settings.home)])
    assert result.exit_code == 1, result.output
    assert "Summary: " in result.output and "failure" in result.output
    summary = result.output[result.output.index("Summary: "):]
    line = next(x for x in summary.splitlines() if "file rejected whole" in x)
    assert line.split()[0] == "2024-03" and "2024-03-cheshire-street.csv" in line and "unexpected columns" in line
    assert "bedfordshire" not in summary


def _zip_with_a_corrupt_member(tmp_path, settings):
    street = contract("police_uk", "street")
    archive = tmp_path / "2024-03.zip"
    good = csv_text(street, [street_row(**{"Crime ID": f"{i:064x}"}) for i in range(1, 4)])
    bad = csv_text(street, [street_row(**{"Crime ID": f"{i:064x}"}) for i in range(10, 400)])
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("2024-03/2024-03-bedfordshire-street.csv", good)
        zf.writestr("2024-03/2024-03-cheshire-street.csv", bad)
    raw = bytearray(archive.read_bytes())
    # Flip bytes inside the second member's compressed data: its header and the central directory stay valid.
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("2024-03/2024-03-cheshire-street.csv")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 10, start + 40):
        raw[i] ^= 0xFF
    archive.write_bytes(bytes(raw))
    return archive


def test_a_corrupt_archive_member_lands_nothing_and_fails_the_command(settings, tmp_path):
    archive = _zip_with_a_corrupt_member(tmp_path, settings)
    summary = land(settings, [archive])
    assert [p.name for p in summary.landed] == ["2024-03-bedfordshire-street.csv"]
    assert [n for n, _ in summary.failed] == ["2024-03/2024-03-cheshire-street.csv"]
    assert sorted(p.name for p in settings.landing.rglob("*") if p.is_file()) == ["2024-03-bedfordshire-street.csv"]

    result = CliRunner().invoke(app, ["ingest", "police-uk", str(archive), "--no-run", "--home", str(settings.home)])
    assert result.exit_code == 1, result.output
    assert "1 could not be landed" in result.output
    assert "2024-03/2024-03-cheshire-street.csv" in result.output[result.output.index("Summary: "):]
    assert not list(settings.landing.rglob("*.part"))


def test_a_copy_left_by_a_dead_process_is_removed_by_the_next_landing(settings, tmp_path):
    incoming = settings.landing_dir("police_uk") / ".incoming"
    incoming.mkdir(parents=True)
    stale = incoming / "2024-03-bedfordshire-street.csv.999999999.part"
    stale.write_text("half a file")
    folder = tmp_path / "extract"
    folder.mkdir()
    street = contract("police_uk", "street")
    (folder / "2024-03-bedfordshire-street.csv").write_text(csv_text(street, [street_row()]))
    land(settings, [folder])
    assert not stale.exists()


def test_the_summary_lists_each_failure_and_a_failed_run_without_details_still_counts():
    s = Summary()
    s.run("2024-01", True, [], "a" * 32)
    assert s.ok and s.lines() == ["Summary: nothing failed."]
    s.run("2024-02", False, [], "b" * 32)
    s.run("transform months 2024-01..2024-02", False, ["step x failed: boom"], "c" * 32)
    assert not s.ok
    lines = s.lines()
    assert lines[0] == "Summary: 2 failures:"
    assert "2024-02" in lines[1] and "run bbbbbbbb failed" in lines[1]
    assert "step x failed: boom (run cccccccc)" in lines[2]
