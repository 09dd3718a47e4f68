"""File digests remembered by size and modification time, so verifying an extract does not re-read it each time.

A trace verifies every extract file behind a prediction against the SHA-256 recorded at ingest. Reading them all
(hundreds of megabytes nationally) on every call made a trace take many seconds. Here a digest computed once is
kept in a small SQLite table under the home (`cache/file_hashes.sqlite`) with the file's size and modification
time in nanoseconds; it is reused while both are unchanged, and the file is read again as soon as either changes
or when asked to (`rehash`, for an audit that trusts nothing it did not read itself).

The same rule keeps the answer of a check that reads only some files (the trace's MLflow hop reads the tracking
store's SQLite file): `remembered` returns it while every file it read has the size and modification time it had
when the check ran, so a command-line trace need not start MLflow (seconds of imports) to repeat a verified answer.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from crimelake.config import Settings
from crimelake.ingest.landing import sha256_file


def _db(settings: Settings) -> sqlite3.Connection:
    path = settings.home / "cache" / "file_hashes.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30)
    con.execute("create table if not exists file_hashes (path text primary key, size integer not null, "
                "mtime_ns integer not null, sha256 text not null, hashed_at real not null)")
    con.execute("create table if not exists checks (key text primary key, stamp text not null, "
                "answer text not null, checked_at real not null)")
    return con


def sha256_of(settings: Settings, path: Path, *, rehash: bool = False) -> tuple[str, bool]:
    """The file's SHA-256 and whether it was read now (False: remembered, the file's size and modification time
    unchanged since it was read)."""
    st = path.stat()
    key = str(path.resolve())
    con = _db(settings)
    try:
        if not rehash:
            row = con.execute("select sha256 from file_hashes where path = ? and size = ? and mtime_ns = ?",
                              (key, st.st_size, st.st_mtime_ns)).fetchone()
            if row:
                return row[0], False
        digest = sha256_file(path)
        with con:
            con.execute("insert or replace into file_hashes values (?, ?, ?, ?, ?)",
                        (key, st.st_size, st.st_mtime_ns, digest, time.time()))
        return digest, True
    finally:
        con.close()


def stamp(paths: list[Path]) -> str:
    """Size and modification time of each file (absent files included, as absent): what must stay the same for a
    remembered answer to stand. Take it before the check reads the files, so a change during the check shows."""
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
        except FileNotFoundError:
            out.append([str(p), None, None])
    return json.dumps(out)


def remembered(settings: Settings, key: str, files_stamp: str) -> tuple[dict, float] | None:
    """The answer kept for `key` and when it was checked, if the files it read are as they were then."""
    con = _db(settings)
    try:
        row = con.execute("select answer, checked_at from checks where key = ? and stamp = ?",
                          (key, files_stamp)).fetchone()
    finally:
        con.close()
    return (json.loads(row[0]), row[1]) if row else None


def remember(settings: Settings, key: str, files_stamp: str, answer: dict) -> None:
    con = _db(settings)
    try:
        with con:
            con.execute("insert or replace into checks values (?, ?, ?, ?)",
                        (key, files_stamp, json.dumps(answer, default=str), time.time()))
    finally:
        con.close()
