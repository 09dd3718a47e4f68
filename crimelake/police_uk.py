"""Land real data.police.uk archives for the pipeline.

Takes `YYYY-MM.zip` archives (or any zip of the archive's `YYYY-MM/YYYY-MM-<force>-<kind>.csv` members, possibly
many months) and extracted folders, and copies each street, outcomes and stop-and-search file into
`landing/police_uk/<YYYY-MM>/`. Landing is never modified: a file already landed with the same bytes is skipped,
and a file with the same name but new bytes (a corrected re-delivery) lands beside it with a suffix, where the
pipeline reads it in place of the older one.

A file is copied into a hidden folder beside the month folders (no month, so never scanned or fingerprinted) and
renamed into its month folder only once complete: a corrupt archive member or an interrupted copy leaves nothing
in landing; copies left by a killed process are removed by the next landing. A member that cannot be
read is reported, and the others still land.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from crimelake.config import Settings
from crimelake.ingest.landing import sha256_file as _sha

POLICE_FILE = re.compile(r"^(?P<month>\d{4}-\d{2})-(?P<force>[a-z0-9-]+?)-(?P<kind>street|outcomes|stop-and-search)\.csv$")


@dataclass
class LandingSummary:
    landed: list[Path] = field(default_factory=list)
    redelivered: list[Path] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (member, why it could not be landed)

    @property
    def months(self) -> list[str]:
        return sorted({p.parent.name for p in self.landed + self.redelivered})

    @property
    def touched_months(self) -> list[str]:
        """Months of every file given, landed now or before: work on them may be unfinished."""
        before = {POLICE_FILE.match(Path(n).name)["month"] for n in self.unchanged}
        return sorted(set(self.months) | before)


def _members(path: Path) -> Iterator[tuple[str, Callable[[], BinaryIO]]]:
    """(file name, opener) for every file in a zip archive or below a folder."""
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise ValueError(f"{path}: not a readable zip archive ({e})") from None
        for info in zf.infolist():
            if not info.is_dir():
                yield info.filename, (lambda i=info: zf.open(i))
    elif path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                yield str(p), (lambda p=p: p.open("rb"))
    elif path.is_file():
        yield str(path), (lambda: path.open("rb"))
    else:
        raise FileNotFoundError(f"{path}: no such file or folder")


def _incoming(settings: Settings) -> Path:
    """Where copies are written before they are complete, with the copies of dead processes removed."""
    from crimelake.recovery import process_alive

    folder = settings.landing_dir("police_uk") / ".incoming"
    folder.mkdir(parents=True, exist_ok=True)
    for p in folder.glob("*.part"):
        pid = p.suffixes[-2].lstrip(".") if len(p.suffixes) >= 2 else ""
        if not pid.isdigit() or not process_alive(int(pid), None):
            p.unlink(missing_ok=True)
    return folder


def land(settings: Settings, paths: list[Path], progress: Callable[[str], None] | None = None) -> LandingSummary:
    summary = LandingSummary()
    incoming = _incoming(settings)
    for src in paths:
        if src.is_file() and not zipfile.is_zipfile(src) and not POLICE_FILE.match(src.name):
            raise ValueError(f"{src}: not a zip archive and not a data.police.uk file name (YYYY-MM-<force>-street.csv)")
        for name, opener in _members(src):
            base = Path(name).name
            m = POLICE_FILE.match(base)
            if not m:
                summary.ignored.append(name)
                continue
            tmp = incoming / f"{base}.{os.getpid()}.part"
            try:
                sha = _copy(opener, tmp)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
                summary.failed.append((name, f"could not be read from {src} ({type(e).__name__}: {e}); "
                                             "nothing landed for it"))
                continue
            folder = settings.landing_dir("police_uk", m["month"])
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / base
            same_name = [target, *folder.glob(f"{target.stem}.*.csv")]
            if any(p.exists() and _sha(p) == sha for p in same_name):
                tmp.unlink()
                summary.unchanged.append(name)
                continue
            if target.exists():
                target = folder / f"{target.stem}.{sha[:8]}.csv"
                summary.redelivered.append(target)
            else:
                summary.landed.append(target)
            os.replace(tmp, target)
            if progress:
                progress(base)
    return summary


def _copy(opener: Callable[[], BinaryIO], tmp: Path) -> str:
    """Copy a member to `tmp`, returning its sha256; on any failure (a corrupt member, an interrupt) `tmp` is
    removed before the error goes on."""
    h = hashlib.sha256()
    try:
        with opener() as fin, tmp.open("wb") as fout:
            for chunk in iter(lambda: fin.read(1 << 20), b""):
                h.update(chunk)
                fout.write(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return h.hexdigest()

