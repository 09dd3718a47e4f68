"""Land real data.police.uk archives for the pipeline.

Takes `YYYY-MM.zip` archives (or any zip of the archive's `YYYY-MM/YYYY-MM-<force>-<kind>.csv` members, possibly
many months) and extracted folders, and copies each street, outcomes and stop-and-search file into
`landing/police_uk/<YYYY-MM>/`. Landing is never modified: a file already landed with the same bytes is skipped,
and a file with the same name but new bytes (a corrected re-delivery) lands beside it with a suffix, where the
pipeline reads it in place of the older one.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import zipfile
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

    @property
    def months(self) -> list[str]:
        return sorted({p.parent.name for p in self.landed + self.redelivered})


def _members(path: Path) -> Iterator[tuple[str, Callable[[], BinaryIO]]]:
    """(file name, opener) for every file in a zip archive or below a folder."""
    if path.is_file() and zipfile.is_zipfile(path):
        zf = zipfile.ZipFile(path)
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


def land(settings: Settings, paths: list[Path], progress: Callable[[str], None] | None = None) -> LandingSummary:
    summary = LandingSummary()
    for src in paths:
        if src.is_file() and not zipfile.is_zipfile(src) and not POLICE_FILE.match(src.name):
            raise ValueError(f"{src}: not a zip archive and not a data.police.uk file name (YYYY-MM-<force>-street.csv)")
        for name, opener in _members(src):
            base = Path(name).name
            m = POLICE_FILE.match(base)
            if not m:
                summary.ignored.append(name)
                continue
            folder = settings.landing_dir("police_uk", m["month"])
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{base}.part"
            h = hashlib.sha256()
            with opener() as fin, tmp.open("wb") as fout:
                for chunk in iter(lambda f=fin: f.read(1 << 20), b""):
                    h.update(chunk)
                    fout.write(chunk)
            sha = h.hexdigest()
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
            shutil.move(tmp, target)
            if progress:
                progress(base)
    return summary

