"""What the lake holds: per source entity, its Delta versions, rows, quarantined rows and rejected files."""

from __future__ import annotations

from dataclasses import dataclass

from deltalake import DeltaTable

from crimelake import lake
from crimelake.config import Settings
from data_contracts.loader import default_contracts


@dataclass
class TableStatus:
    source: str
    entity: str
    bronze_version: int | None
    months: list[str]
    rows: int
    quarantined: int
    rejected_files: int
    duplicate_or_superseded_files: int


def _rows(path, where: str | None = None) -> int:
    if not lake.table_exists(path):
        return 0
    ds = DeltaTable(str(path)).to_pyarrow_dataset()
    if where is None:
        return ds.count_rows()
    import pyarrow.compute as pc

    return ds.count_rows(filter=pc.field("status") == where)


def table_status(settings: Settings) -> list[TableStatus]:
    out = []
    for c in default_contracts().values():
        b = settings.bronze(c.source, c.entity)
        months: list[str] = []
        if lake.table_exists(b):
            months = sorted({dict(p)["month"] for p in DeltaTable(str(b)).partitions()})
        rf = settings.rejected_files(c.source, c.entity)
        rejected = _rows(rf, "rejected")
        out.append(TableStatus(
            source=c.source, entity=c.entity, bronze_version=lake.version(b), months=months, rows=_rows(b),
            quarantined=_rows(settings.quarantine(c.source, c.entity)), rejected_files=rejected,
            duplicate_or_superseded_files=_rows(rf) - rejected,
        ))
    return out


@dataclass
class GoldStatus:
    mart: str
    version: int | None
    rows: int


def gold_status(settings: Settings) -> list[GoldStatus]:
    base = settings.lake / "gold"
    if not base.is_dir():
        return []
    return [GoldStatus(p.name, lake.version(p), _rows(p)) for p in sorted(base.iterdir()) if lake.table_exists(p)]
