"""Releases: which version of every gold and public table readers see, published together, written last.

A transform run replaces months of many tables, one commit each. Until its last table is written, and forever
after a kill in the middle, the newest versions are a mix of the new run and the old one. So the run ends by
appending one release to `lake/releases`, one row per table naming the Delta version it wrote, in a single commit:
only once every export before it succeeded and every blocking check on what it wrote passed (the release asset is
downstream of them all, and a failed step or check skips it). Readers (the map, the models, hot spot tracking)
read each table at the version the newest release names; a table no release names yet (a lake built before
releases, or a table added since) is read at its newest version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from crimelake import lake
from crimelake.config import Settings

RELEASED_LAYERS = ("gold", "public")
SCHEMA = pa.schema([
    ("release_id", pa.int64()),
    ("released_at", pa.timestamp("us", tz="UTC")),
    ("run_id", pa.string()),
    ("months", pa.string()),
    ("table_name", pa.string()),
    ("table_version", pa.int64()),
])


@dataclass(frozen=True)
class Release:
    release_id: int
    released_at: datetime
    run_id: str
    months: str
    # Table name relative to the lake ("gold/dim_cells") -> Delta version.
    versions: dict[str, int] = field(default_factory=dict)

    def version_of(self, name: str) -> int | None:
        return self.versions.get(name)


def releases_path(settings: Settings) -> Path:
    return settings.lake / "releases"  # as `_rows` reads it from a lake root


def released_tables(settings: Settings) -> list[str]:
    """Every gold and public table in the lake, by name relative to the lake."""
    return [p.relative_to(settings.lake).as_posix() for p in lake.tables_under(settings.lake, RELEASED_LAYERS)]


def publish(settings: Settings, run_id: str, months: str = "") -> Release:
    """Append a release naming the newest version of every gold and public table, in one commit."""
    versions = {name: lake.version(settings.lake / name) for name in released_tables(settings)}
    versions = {k: v for k, v in sorted(versions.items()) if v is not None}
    if not versions:
        raise FileNotFoundError(f"nothing to release: no gold or public tables under {settings.lake}")
    previous = latest(settings)
    rid = 1 if previous is None else previous.release_id + 1
    now = datetime.now(UTC)
    n = len(versions)
    rows = pa.table({
        "release_id": pa.array([rid] * n, pa.int64()),
        "released_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
        "run_id": pa.array([run_id] * n, pa.string()),
        "months": pa.array([months] * n, pa.string()),
        "table_name": pa.array(list(versions), pa.string()),
        "table_version": pa.array(list(versions.values()), pa.int64()),
    }, schema=SCHEMA)
    lake.append(releases_path(settings), rows)
    return Release(rid, now, run_id, months, versions)


def _rows(lake_root: Path) -> pa.Table | None:
    try:
        return DeltaTable(str(lake_root / "releases")).to_pyarrow_table()
    except TableNotFoundError:
        return None


def _release(rows: pa.Table, rid: int) -> Release:
    mine = rows.filter(pc.equal(rows["release_id"], rid)).to_pylist()
    first = mine[0]
    return Release(rid, first["released_at"], first["run_id"], first["months"],
                   {r["table_name"]: r["table_version"] for r in mine})


def latest(settings: Settings) -> Release | None:
    """The newest release, or None when the lake has none."""
    return latest_in(settings.lake)


def latest_in(lake_root: Path) -> Release | None:
    """The newest release of the lake at `lake_root`, or None when it has none."""
    rows = _rows(lake_root)
    if rows is None or rows.num_rows == 0:
        return None
    return _release(rows, pc.max(rows["release_id"]).as_py())


def history(settings: Settings) -> list[Release]:
    """Every release, oldest first."""
    rows = _rows(settings.lake)
    if rows is None:
        return []
    return [_release(rows, rid) for rid in sorted(set(rows["release_id"].to_pylist()))]


def version_to_read(settings: Settings, name: str, release: Release | None = None) -> int | None:
    """The version of lake table `name` ("gold/x", "public/y") readers should read: the one the newest release
    names, else None (its newest version)."""
    if name.split("/", 1)[0] not in RELEASED_LAYERS:
        return None
    release = latest(settings) if release is None else release
    return None if release is None else release.version_of(name)


def gold_versions(settings: Settings) -> dict[str, int]:
    """Gold table name (without the layer) -> released version, for readers of gold by name."""
    release = latest(settings)
    if release is None:
        return {}
    return {k.split("/", 1)[1]: v for k, v in release.versions.items() if k.startswith("gold/")}
