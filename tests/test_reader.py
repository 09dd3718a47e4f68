"""The reader: whole-file rejections and line-level failures, with file and line named."""

from __future__ import annotations

from pathlib import Path

import pytest

from crimelake.ingest.reader import FileRejected, parse_bytes
from tests.factories import contract, csv_text, rms_ho_row, street_row

STREET = contract("police_uk", "street")
RMS = contract("force_rms_ho", "crimes")


def parse(c, text: str | bytes):
    data = text if isinstance(text, bytes) else text.encode(c.encoding)
    return parse_bytes(Path("f.csv"), data, c)


def test_clean_file_reads_every_line_with_its_number():
    p = parse(STREET, csv_text(STREET, [street_row(), street_row(**{"Crime type": "Drugs"})]))
    assert p.lines.tolist() == [2, 3]
    assert p.columns["crime_type"].to_pylist() == ["Burglary", "Drugs"]
    assert p.bad == []


def test_empty_file_is_rejected():
    with pytest.raises(FileRejected, match="empty file"):
        parse(STREET, b"")


def test_binary_file_is_rejected():
    with pytest.raises(FileRejected, match="not a text file"):
        parse(STREET, b"PK\x03\x04\x00\x00binary")


def test_extra_column_rejects_the_file_naming_it():
    text = csv_text(STREET, [street_row()])
    lines = text.splitlines()
    text = "\n".join([lines[0] + ",Extra", lines[1] + ",x"]) + "\n"
    with pytest.raises(FileRejected, match=r"unexpected columns \['Extra'\]") as e:
        parse(STREET, text)
    assert e.value.line == 1


def test_missing_column_rejects_the_file():
    text = csv_text(STREET, [street_row()]).replace("Crime type,", "", 1)
    with pytest.raises(FileRejected, match=r"missing columns \['Crime type'\]"):
        parse(STREET, text)


def test_columns_in_another_order_still_read():
    hdr = list(reversed(STREET.header))
    row = street_row()
    text = ",".join(hdr) + "\n" + ",".join(row[h] for h in hdr) + "\n"
    p = parse(STREET, text)
    assert p.columns["crime_type"].to_pylist() == ["Burglary"]
    assert p.columns["lsoa_code"].to_pylist() == ["E01017540"]


def test_wrong_encoding_is_rejected_with_its_line():
    good = csv_text(STREET, [street_row()]).encode("utf-8")
    bad = good + "x,2024-03,caf\xe9\n".encode("cp1252")
    with pytest.raises(FileRejected, match="not valid utf-8") as e:
        parse(STREET, bad)
    assert e.value.line == 3


def test_cp1252_file_decodes_with_crlf():
    p = parse(RMS, csv_text(RMS, [rms_ho_row()], newline="\r\n"))
    assert p.columns["offence_desc"].to_pylist() == ["Theft – shop"]
    assert p.columns["status"].to_pylist() == ["OPEN"]


def test_broken_lines_cost_only_themselves():
    text = csv_text(STREET, [street_row(), street_row()])
    lines = text.splitlines()
    broken = [
        lines[0],
        lines[1],
        'x,2024-03,"Bedfordshire Police,unbalanced',  # unbalanced quote
        "",  # blank line
        "a,b,c",  # too few fields
        lines[2],
        lines[2][:100],  # truncated last row
    ]
    p = parse(STREET, "\n".join(broken))
    assert p.lines.tolist() == [2, 6]
    assert [(b.line, b.reason) for b in p.bad] == [
        (3, "malformed CSV: unbalanced quote"),
        (4, "blank line"),
        (5, "expected 12 fields, found 3"),
        (7, f"expected 12 fields, found {len(lines[2][:100].split(','))}"),
    ]
    assert p.rows_read == 6
    assert p.bad[3].raw == lines[2][:100]
