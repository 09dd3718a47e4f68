"""Small hand-made extract files for tests, written in a contract's exact shape."""

from __future__ import annotations

from pathlib import Path

import duckdb

from crimelake.config import Settings
from data_contracts.loader import Contract, default_contracts

STREET_ID = "a" * 64


def contract(source: str, entity: str) -> Contract:
    return default_contracts()[(source, entity)]


def street_row(**over: str) -> dict[str, str]:
    row = {
        "Crime ID": STREET_ID, "Month": "2024-03", "Reported by": "Bedfordshire Police",
        "Falls within": "Bedfordshire Police", "Longitude": "-0.466", "Latitude": "52.136",
        "Location": "On or near High Street", "LSOA code": "E01017540", "LSOA name": "Bedford 001A",
        "Crime type": "Burglary", "Last outcome category": "Under investigation", "Context": "",
    }
    row.update(over)
    return row


def street_rows(n: int, **over: str) -> list[dict[str, str]]:
    """`n` street rows alike but for their Crime IDs: one crime each, as a month's file holds them."""
    return [street_row(**{"Crime ID": f"{k + 1:064x}", **over}) for k in range(n)]


def rms_ho_row(ref: str = "BD/0012345/24", **over: str) -> dict[str, str]:
    row = {
        "CRIME_REF": ref, "REC_DATE": "05/03/2024", "COMMITTED_DATE": "04/03/2024", "HO_CODE": "046",
        "OFFENCE_DESC": "Theft – shop", "EASTING": "504900", "NORTHING": "249700", "BEAT": "B12",
        "WARD_NAME": "Castle", "KNIFE_FLAG": "N", "STATUS": "OPEN",
    }
    row.update(over)
    return row


def csv_text(c: Contract, rows: list[dict[str, str]], *, newline: str = "\n") -> str:
    def q(v: str) -> str:
        return f'"{v}"' if ("," in v or '"' in v) else v

    lines = [",".join(c.header)] + [",".join(q(r[h]) for h in c.header) for r in rows]
    return newline.join(lines) + newline


def land(settings: Settings, c: Contract, month: str, name: str, content: str | bytes) -> Path:
    folder = settings.landing_dir(c.source, month)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(c.encoding))
    return path


def query(settings: Settings, sql: str) -> list[tuple]:
    """Rows of one query on the home's warehouse, opened read-only and closed again."""
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
