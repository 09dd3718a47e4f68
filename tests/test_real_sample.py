"""The real data.police.uk March 2023 sample: landed with the CLI, every line loaded or quarantined."""

from __future__ import annotations

import zipfile

import pytest
from typer.testing import CliRunner

from crimelake import lake
from crimelake.cli import app
from data_contracts.loader import default_contracts

pytestmark = [pytest.mark.realdata, pytest.mark.integration]

KINDS = {"street": "street", "outcomes": "outcomes", "stop-and-search": "stop_and_search"}


def data_lines(path) -> int:
    return sum(1 for _ in path.open("rb")) - 1


def test_ingest_police_uk_accounts_for_every_line_of_the_real_sample(settings, real_sample, tmp_path):
    archive = tmp_path / "2023-03.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(real_sample.glob("*.csv")):
            zf.write(f, f"2023-03/{f.name}")
    result = CliRunner().invoke(app, ["ingest", "police-uk", str(archive), "--home", str(settings.home)])
    assert result.exit_code == 0, result.output
    assert "Landed 17 new" in result.output

    for kind, entity in KINDS.items():
        expected = sum(data_lines(f) for f in real_sample.glob(f"*-{kind}.csv"))
        bronze = lake.read(settings.bronze("police_uk", entity), month="2023-03")
        quarantine = lake.read(settings.quarantine("police_uk", entity), month="2023-03")
        assert bronze.num_rows + quarantine.num_rows == expected, kind
        # Each row keeps the line it came from: no line is counted twice.
        keys = list(zip(bronze.column("_source_file").to_pylist() + quarantine.column("_source_file").to_pylist(),
                        bronze.column("_source_line").to_pylist() + quarantine.column("_source_line").to_pylist(),
                        strict=True))
        assert len(set(keys)) == expected
    # What the real month quarantines: British Transport Police incidents on Scotland's railways, which lie
    # outside England and Wales, and City of London crimes published twice under one Crime ID (once per place).
    street_q = lake.read(settings.quarantine("police_uk", "street"))
    by_supplier: dict[str, list[str]] = {}
    for supplier, reason in zip(street_q.column("supplier").to_pylist(), street_q.column("reason").to_pylist(),
                                strict=True):
        by_supplier.setdefault(supplier, []).append(reason)
    assert set(by_supplier) == {"btp", "city-of-london"}
    assert all("outside England and Wales" in r for r in by_supplier["btp"])
    assert len(by_supplier["city-of-london"]) == 11
    assert all("Crime ID:" in r and "duplicates the row at landing/police_uk/2023-03/2023-03-city-of-london-street.csv"
               in r for r in by_supplier["city-of-london"])

    # The same archive again lands nothing new and changes no table.
    before = {c.entity: lake.version(settings.bronze(c.source, c.entity))
              for c in default_contracts().values() if c.source == "police_uk"}
    again = CliRunner().invoke(app, ["ingest", "police-uk", str(real_sample), "--home", str(settings.home)])
    assert again.exit_code == 0, again.output
    assert "17 already landed" in again.output
    after = {e: lake.version(settings.bronze("police_uk", e)) for e in before}
    assert after == before


def test_ingest_police_uk_names_a_missing_path(settings, tmp_path):
    result = CliRunner().invoke(app, ["ingest", "police-uk", str(tmp_path / "nope.zip"), "--home", str(settings.home)])
    assert result.exit_code == 2
    assert "nope.zip: no such file or folder" in result.output
