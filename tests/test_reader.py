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


def test_a_line_in_the_wrong_encoding_costs_that_line_alone():
    good = csv_text(STREET, [street_row()]).encode("utf-8")
    bad = good + "x,2024-03,caf\xe9\n".encode("cp1252") + good.split(b"\n", 1)[1]
    p = parse(STREET, bad)
    assert p.lines.tolist() == [2, 4]
    [b] = p.bad
    assert (b.line, b.reason) == (3, "not valid UTF-8 at byte 14 of the line (0xe9)")
    assert b.raw == "x,2024-03,caf\\xe9"


def test_a_header_that_is_not_text_rejects_the_file_on_line_1():
    with pytest.raises(FileRejected, match="not a text file in utf-8: header line: not valid UTF-8") as e:
        parse(STREET, "Crime ID,Mo\xf1th\n".encode("cp1252"))
    assert e.value.line == 1


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


def reference_parse(c, text: str):
    """The plain line-by-line reading the buffer reader must agree with: rows, line numbers and bad lines."""
    import csv

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    header = next(csv.reader([lines[0]]))
    width = len(header)
    pos = [header.index(h) for h in c.header]
    rows, numbers, bad = [], [], []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            bad.append((i, line, "blank line"))
            continue
        if '"' in line:
            try:
                parsed = list(csv.reader([line], strict=True))
                fields = parsed[0] if len(parsed) == 1 else None
            except csv.Error:
                fields = None
        else:
            fields = line.split(",")
        if fields is None:
            bad.append((i, line, "malformed CSV: unbalanced quote"))
        elif len(fields) != width:
            bad.append((i, line, f"expected {width} fields, found {len(fields)}"))
        else:
            rows.append([fields[p] for p in pos])
            numbers.append(i)
    return rows, numbers, bad


@pytest.mark.parametrize("bare_cr", [True, False], ids=["with-bare-cr", "without-bare-cr"])
def test_buffer_reading_agrees_with_line_by_line_reading_on_every_kind_of_line(bare_cr):
    """With a carriage return inside a line, each line's delimiters are counted before Arrow parses; without one,
    Arrow counts the fields and refuses the lines with the wrong number: both must read as line by line."""
    import random

    rng = random.Random(7)
    plain = csv_text(STREET, [street_row()]).splitlines()[1]
    kinds = [
        lambda: plain,
        lambda: plain.replace("Bedfordshire Police", '"Bedfordshire, Police"', 1),  # delimiter inside quotes
        lambda: plain.replace("High Street", '"High ""Street"""', 1),  # doubled quotes
        lambda: plain.replace("On or near", 'On "or near', 1),  # a literal quote inside a field
        lambda: '"' + plain,  # unbalanced quote
        lambda: plain.replace("Bedfordshire Police", '"Bedfordshire" Police', 1),  # text after a closing quote
        lambda: "",
        lambda: "   \t ",
        lambda: plain + ",extra",
        lambda: plain.rsplit(",", 3)[0],
        lambda: plain.replace("High Street", "High\rStreet", 1),  # bare CR inside a line
        lambda: plain.replace("Burglary", "Burglary\u00a0é", 1),  # non-ASCII text
        lambda: "\ufeff" + plain,  # a byte-order mark that is not at the start of the file
        lambda: ",,,,,,,,,,,",  # right number of fields, all empty
        lambda: plain.replace("High Street", '"High"\rStreet', 1),  # a quote, then a bare CR outside it
        lambda: plain.replace("High Street", '"High\rStreet"', 1),  # a bare CR inside quotes
        lambda: plain.replace("Burglary", 'Burglary,"x', 1),  # a quote opened in a last field
    ]
    if not bare_cr:
        kinds = [k for k in kinds if "\r" not in k()]
    for trial in range(60):
        body = [rng.choice(kinds)() for _ in range(rng.randint(1, 60))]
        ending = rng.choice(["\n", "\r\n"])
        text = ending.join([",".join(STREET.header), *body]) + rng.choice([ending, ""])
        p = parse(STREET, text)
        rows, numbers, bad = reference_parse(STREET, text)
        assert p.lines.tolist() == numbers, trial
        assert [(b.line, b.raw, b.reason) for b in p.bad] == bad, trial
        for j, col in enumerate(STREET.columns):
            assert p.columns[col.name].to_pylist() == [r[j] for r in rows], (trial, col.name)
        assert p.raw_text(range(len(numbers))).to_pylist() == [
            text.replace("\r\n", "\n").split("\n")[n - 1] for n in numbers], trial


def test_a_quote_left_open_does_not_swallow_the_plain_lines_after_it():
    rows = [street_row(**{"Crime type": f"Drugs{i}"}) for i in range(50)]
    lines = csv_text(STREET, rows).splitlines()
    lines[10] = '"' + lines[10]
    p = parse(STREET, "\n".join(lines) + "\n")
    assert [(b.line, b.reason) for b in p.bad] == [(11, "malformed CSV: unbalanced quote")]
    assert len(p.lines) == 49 and p.lines[-1] == 51
    assert "Drugs9" not in p.columns["crime_type"].to_pylist()
    assert p.columns["crime_type"].to_pylist()[9] == "Drugs10"


def test_a_file_with_a_byte_order_mark_and_only_a_header_reads_no_rows():
    p = parse(STREET, ("\ufeff" + ",".join(STREET.header) + "\r\n").encode("utf-8"))
    assert p.rows_read == 0 and p.columns["crime_id"].to_pylist() == []


def test_arrow_counts_the_fields_and_a_carriage_return_inside_a_line_is_caught():
    from crimelake.ingest.lines import split_lines, unquoted_lines

    header = ",".join(STREET.header)
    row = csv_text(STREET, [street_row()]).splitlines()[1]
    crlf = split_lines(f"{header}\r\n{row}\r\n\r\n{row},extra\r\n\"{row}\r\n".encode())
    # Empty and quoted lines are left out; the line with an extra field is left for Arrow to refuse.
    assert unquoted_lines(crlf, ",", 12).tolist() == [True, True, False, True, False]
    bare_cr = f"{header}\n{row}\rx\n{row}\n"
    assert unquoted_lines(split_lines(bare_cr.encode()), ",", 12).tolist() == [True, True, True]
    # Arrow ends a line at the bare carriage return: its rows no longer match the lines, and each line's
    # delimiters are counted instead.
    p = parse(STREET, bare_cr)
    rows, numbers, bad = reference_parse(STREET, bare_cr)
    assert p.lines.tolist() == numbers == [2, 3] and not p.bad and not bad
    assert p.columns["context"].to_pylist() == [r[-1] for r in rows] and rows[0][-1].endswith("\rx")
    # A line of tabs alone is blank, yet has the fields of a tab-delimited row: those delimiters are counted.
    assert unquoted_lines(crlf, ";", 12) is not None and unquoted_lines(crlf, "\t", 12) is None


def test_many_lines_read_one_by_one_keep_their_places():
    """Past `MAX_INSERTED` rows read line by line, the column is ordered by a take rather than slice by slice."""
    from crimelake.ingest.reader import MAX_INSERTED

    plain = csv_text(STREET, [street_row()]).splitlines()[1]
    quoted = plain.replace("Bedfordshire Police", '"Bedfordshire, Police"', 1)
    body = [plain.replace("Burglary", f"Burglary{i}", 1) if i % 3 else quoted.replace("Burglary", f"Burglary{i}", 1)
            for i in range(3 * MAX_INSERTED + 30)]
    text = "\r\n".join([",".join(STREET.header), *body]) + "\r\n"
    p = parse(STREET, text)
    rows, numbers, bad = reference_parse(STREET, text)
    assert len(rows) > MAX_INSERTED and not bad
    assert p.lines.tolist() == numbers
    for j, col in enumerate(STREET.columns):
        assert p.columns[col.name].to_pylist() == [r[j] for r in rows], col.name
