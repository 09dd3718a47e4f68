"""What has landed for one source entity and month, and which delivery of each file counts.

Landing folders are never modified: a re-delivery sits beside the file it repeats or corrects. For each logical
file (the name without its delivery suffix), byte-identical copies count once, and when contents differ the newest
delivery wins; the others are recorded as duplicate or superseded, never read twice.

A file is hashed here only when the decision needs its hash (copies to compare, a file to reject); the one file of
a logical file is hashed as it is read, so each file is read and hashed once.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from crimelake.config import Settings
from data_contracts.loader import Contract

log = logging.getLogger(__name__)


@dataclass
class LandedFile:
    path: Path
    name: str
    groups: dict[str, str]
    mtime_ns: int
    size: int
    sha256: str = ""  # empty until a decision needs it; the reader hashes what it reads

    def hashed(self) -> LandedFile:
        if not self.sha256:
            self.sha256 = sha256_file(self.path)
        return self

    @property
    def logical_key(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((k, v) for k, v in self.groups.items() if k != "suffix"))

    @property
    def supplier(self) -> str | None:
        return self.groups.get("force") or self.groups.get("authority")


@dataclass
class Decision:
    file: LandedFile
    status: str  # "read", "duplicate", "superseded", "rejected"
    reason: str = ""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def quarter_first_month(quarter: str) -> str:
    year, q = quarter.split("-Q")
    return f"{year}-{(int(q) - 1) * 3 + 1:02d}"


def _month_of_name(groups: dict[str, str]) -> str | None:
    if "month" in groups:
        return groups["month"]
    if "quarter" in groups:
        return quarter_first_month(groups["quarter"])
    return None


def owns_strays(contract: Contract, siblings: list[Contract]) -> bool:
    """Whether `contract` reports what belongs to no contract of its source: one of them does, so each stray is
    reported once."""
    return sorted(siblings, key=lambda c: c.entity)[0].entity == contract.entity


def plan(settings: Settings, contract: Contract, month: str, siblings: list[Contract]) -> list[Decision]:
    """Decide, for every file in the month's landing folder that belongs to this contract, whether it is read.

    `siblings` are all contracts of the same source; a file that matches none of them is rejected by the first
    (so that it is reported once, not by every entity of the source).
    """
    folder = settings.landing_dir(contract.source, month)
    if not folder.is_dir():
        return []
    owner_of_strays = owns_strays(contract, siblings)
    decisions: list[Decision] = []
    mine: list[LandedFile] = []
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        st = path.stat()
        if not path.is_file():
            if owner_of_strays:
                decisions.append(Decision(LandedFile(path, path.name, {}, st.st_mtime_ns, 0), "rejected",
                                          "a folder inside a month folder: files land directly in the month "
                                          "folder, so its contents are not read"))
            continue
        m = contract.filename_pattern.match(path.name)
        if m is None:
            if owner_of_strays and not any(s.filename_pattern.match(path.name) for s in siblings):
                lf = LandedFile(path, path.name, {}, st.st_mtime_ns, st.st_size).hashed()
                names = ", ".join(s.ref for s in siblings)
                decisions.append(Decision(lf, "rejected", f"file name matches no contract of source "
                                                          f"{contract.source} ({names})"))
            continue
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        lf = LandedFile(path, path.name, groups, st.st_mtime_ns, st.st_size)
        named = _month_of_name(groups)
        if named is not None and named != month:
            decisions.append(Decision(lf.hashed(), "rejected",
                                      f"file is named for {named} but landed in the {month} folder"))
            continue
        force = groups.get("force")
        if force is not None:
            from crimelake.reference.forces import force_by_slug

            try:
                force_by_slug(force)
            except KeyError:
                decisions.append(Decision(lf.hashed(), "rejected", f"unknown force slug {force!r} in file name"))
                continue
        mine.append(lf)

    by_key: dict[tuple, list[LandedFile]] = {}
    for lf in mine:
        by_key.setdefault(lf.logical_key, []).append(lf)
    for files in by_key.values():
        if len(files) == 1:
            decisions.append(Decision(files[0], "read"))
            continue
        # Identical bytes: the plainest name (no delivery suffix, then shortest) stands for all copies,
        # whatever their mtimes.
        by_sha: dict[str, list[LandedFile]] = {}
        for lf in files:
            by_sha.setdefault(lf.hashed().sha256, []).append(lf)
        versions = []
        for copies in by_sha.values():
            copies.sort(key=lambda f: (bool(f.groups.get("suffix")), len(f.name), f.name))
            versions.append(copies)
            for dup in copies[1:]:
                decisions.append(Decision(dup, "duplicate", f"identical to {copies[0].name} (same SHA-256)"))
        # Different bytes: the newest delivery corrects the older ones.
        versions.sort(key=lambda cs: (max(f.mtime_ns for f in cs), cs[0].name))
        newest = versions[-1][0]
        for old in versions[:-1]:
            decisions.append(Decision(old[0], "superseded", f"corrected by newer delivery {newest.name}"))
        decisions.append(Decision(newest, "read"))
    decisions.sort(key=lambda d: d.file.name)
    return decisions


_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_logged: set[tuple[str, str]] = set()


def is_month(name: str) -> bool:
    """A month folder's name: YYYY-MM with a real month."""
    return bool(_MONTH.match(name))


@dataclass(frozen=True)
class LandingProblem:
    """Something in a source's landing folder that no month can read: a folder not named for a month, or a file
    outside every month folder."""

    path: Path
    reason: str


def landing_problems(settings: Settings, source: str) -> list[LandingProblem]:
    """What in `landing/<source>/` is not a month folder, with the reason; each is logged (once per process)."""
    base = settings.landing_dir(source)
    if not base.is_dir():
        return []
    out = []
    for p in sorted(base.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir() and not is_month(p.name):
            out.append(LandingProblem(p, f"folder name {p.name!r} is not a month (YYYY-MM, month 01 to 12): "
                                         f"its files are not read"))
        elif not p.is_dir():
            out.append(LandingProblem(p, f"file {p.name!r} lies outside every month folder: files land in "
                                         f"landing/{source}/YYYY-MM/"))
    for problem in out:
        key = (str(problem.path), problem.reason)
        if key not in _logged:
            _logged.add(key)
            log.warning("landing/%s/%s rejected: %s", source, problem.path.name, problem.reason)
    return out


def landed_months(settings: Settings, source: str) -> list[str]:
    """The source's month folders, in order. Anything else in its landing folder is left out (and logged), so a
    badly named folder holds no month back."""
    base = settings.landing_dir(source)
    if not base.is_dir():
        return []
    landing_problems(settings, source)
    return sorted(p.name for p in base.iterdir() if p.is_dir() and is_month(p.name))


def fingerprint(settings: Settings, source: str, month: str) -> str:
    """Cheap change signature of a month folder (names, sizes, mtimes), for the landing sensor."""
    folder = settings.landing_dir(source, month)
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        if p.is_file():
            st = p.stat()
            h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
