"""The append-only audit log: who ran, promoted, exported or viewed what, and when (Delta table lake/audit/log).

Rows are only ever appended; earlier versions of the table stay readable by time travel, so an entry cannot be
changed without the change showing in the table's history.
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime

import pyarrow as pa

from crimelake import lake
from crimelake.config import Settings

AUDIT_SCHEMA = pa.schema([
    ("at", pa.timestamp("us", tz="UTC")),
    ("actor", pa.string()),
    ("action", pa.string()),
    ("target", pa.string()),
    ("detail", pa.string()),
])

ACTIONS = {"ingest", "run", "promote", "keep_champion", "not_promoted", "export", "view", "refused"}


def actor() -> str:
    """CRIMELAKE_ACTOR when set (a service or a signed-in user), else the operating-system user."""
    return os.environ.get("CRIMELAKE_ACTOR") or getpass.getuser()


def entry(action: str, target: str, detail: dict | None = None, *, who: str | None = None) -> dict:
    """One audit row, timed now; `who` names the actor when it is not this process's user (a map API key, say)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: one of {sorted(ACTIONS)}")
    return {"at": datetime.now(UTC), "actor": who or actor(), "action": action, "target": target,
            "detail": json.dumps(detail or {}, sort_keys=True, default=str)}


def append(settings: Settings, rows: list[dict]) -> int:
    """Append rows made by `entry` in one commit; the log's new version."""
    return lake.append(settings.lake / "audit" / "log", pa.Table.from_pylist(rows, schema=AUDIT_SCHEMA)).version


def record(settings: Settings, action: str, target: str, detail: dict | None = None, *,
           who: str | None = None) -> int:
    """Append one entry now (see `entry`)."""
    return append(settings, [entry(action, target, detail, who=who)])


def entries(settings: Settings) -> list[dict]:
    path = settings.lake / "audit" / "log"
    if not lake.table_exists(path):
        return []
    return sorted(lake.read(path).to_pylist(), key=lambda r: r["at"])
