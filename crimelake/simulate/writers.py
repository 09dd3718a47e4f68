"""Writing extract files exactly as each contract describes them, with the planned defects, and keeping score.

The landing layout is `<landing>/<source>/<YYYY-MM>/<filename>`. Every file gets the contract's header, delimiter
and encoding. data.police.uk files and the Windows-1252 RMS export end lines with CRLF, as their real counterparts
do; the others with LF.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from crimelake.simulate import defects as dfx
from crimelake.simulate.rng import DEFECTS, key_of, stream
from data_contracts.loader import default_contracts

CRLF_SOURCES = {"police_uk", "force_rms_ho"}


@dataclass
class GenerateSummary:
    """What a run wrote, and every defect it put there on purpose."""

    landing: Path
    files: list[Path] = field(default_factory=list)
    rows: dict[tuple[str, str], int] = field(default_factory=dict)  # data lines written per (source, entity)
    defects: dict[str, int] = field(default_factory=dict)  # kind -> number injected
    defect_records: list[dfx.Defect] = field(default_factory=list)
    defective_files: dict[str, str] = field(default_factory=dict)  # relative path -> file-level defect kind
    hotspots: list[dict] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)  # force, month, kind (missing or partial), share of street rows

    def defects_in(self, rel_path: str) -> list[dfx.Defect]:
        return [d for d in self.defect_records if d.file == rel_path]

    def bad_lines(self) -> dict[str, set[int]]:
        """For each file, the physical lines a reader must quarantine (row defects and cut-off rows)."""
        out: dict[str, set[int]] = {}
        for d in self.defect_records:
            if d.line is not None:
                out.setdefault(d.file, set()).add(d.line)
        return out


def _quoted(values: np.ndarray, delimiter: str) -> list[str]:
    vals = values.tolist()
    if any(delimiter in v or '"' in v for v in vals):
        return [f'"{v.replace(chr(34), chr(34) * 2)}"' if (delimiter in v or '"' in v) else v for v in vals]
    return vals


def render(columns: dict[str, np.ndarray], header: list[str], delimiter: str) -> list[str]:
    if list(columns) != header:
        raise ValueError(f"columns {list(columns)} do not match the contract header {header}")
    cols = [_quoted(np.asarray(columns[h], dtype=object), delimiter) for h in header]
    return [delimiter.join(r) for r in zip(*cols, strict=True)]


def header_line(header: list[str], delimiter: str) -> str:
    return delimiter.join(f'"{h}"' if delimiter in h else h for h in header)


class Writer:
    def __init__(self, landing: Path, seed: int, defect_rate: float, planned: list[tuple[str, str, str]],
                 progress: Callable[[str, int, int], None] | None):
        self.landing = landing
        self.seed = seed
        self.rate = defect_rate
        self.summary = GenerateSummary(landing=landing)
        self.progress = progress
        self.totals = Counter(src for src, _, _ in planned)
        self.done: Counter[str] = Counter()
        self.contracts = default_contracts()
        self.roles = self._roles(planned) if defect_rate > 0 else {}
        self.owed = {(s, e): set(dfx.applicable(self.contracts[(s, e)])) for s, e, _ in planned} if defect_rate > 0 else {}

    def _roles(self, planned: list[tuple[str, str, str]]) -> dict[str, str]:
        by_key: dict[tuple[str, str], list[str]] = {}
        for s, e, rel in planned:
            by_key.setdefault((s, e), []).append(rel)
        roles: dict[str, str] = {}
        for (s, e), rels in sorted(by_key.items()):
            rng = stream(self.seed, DEFECTS, key_of(f"{s}/{e}"))
            if len(rels) < 2:
                continue
            pick = rng.permutation(len(rels))
            roles[rels[pick[0]]] = "duplicate_file"
            if len(rels) >= 3:
                roles[rels[pick[1]]] = "truncated_file"
        return roles

    def _record(self, d: dfx.Defect) -> None:
        self.summary.defect_records.append(d)
        self.summary.defects[d.kind] = self.summary.defects.get(d.kind, 0) + 1

    def emit(self, source: str, entity: str, rel: str, columns: dict[str, np.ndarray],
             truth: np.ndarray | None = None) -> None:
        contract = self.contracts[(source, entity)]
        name = PurePosixPath(rel).name
        if not contract.filename_pattern.match(name):
            raise ValueError(f"{name} does not match the {contract.ref} file name pattern")
        role = self.roles.get(rel)
        delim = contract.delimiter
        columns = {k: np.array(v, dtype=object) for k, v in columns.items()}  # defects edit a copy, not the caller's
        records: list[tuple[int, str, str]] = []
        edits: dict[int, str] = {}
        if self.rate > 0 and role != "duplicate_file":
            owed = self.owed[(source, entity)] if role is None else set()
            chosen = dfx.choose_rows(contract, columns, self.rate, owed, rel, self.seed, truth)
            records, edits = chosen.records, chosen.line_edits
        lines = render(columns, contract.header, delim)
        for row, edit in edits.items():
            lines[row] = dfx.edit_line(lines[row], edit, delim)
        eol = "\r\n" if source in CRLF_SOURCES else "\n"
        head = header_line(contract.header, delim)
        cut = dfx.truncate(lines, delim, stream(self.seed, DEFECTS, key_of(rel), 1)) if role == "truncated_file" else None
        if cut is not None:
            k, partial = cut
            text = eol.join([head, *lines[:k], partial])
            self._record(dfx.Defect("truncated_file", source, entity, rel, k + 2,
                                    f"file ends part-way through line {k + 2}; {len(lines) - k - 1} later rows missing"))
            self.summary.defective_files[rel] = "truncated_file"
            records = [r for r in records if r[0] < k]
            written = k + 1
        else:
            text = eol.join([head, *lines]) + eol
            written = len(lines)
        for row, kind, detail in records:
            self._record(dfx.Defect(kind, source, entity, rel, row + 2, detail))
            self.owed.get((source, entity), set()).discard(kind)
        path = self.landing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode(contract.encoding)
        path.write_bytes(data)
        self.summary.files.append(path)
        key = (source, entity)
        self.summary.rows[key] = self.summary.rows.get(key, 0) + written
        if role == "duplicate_file":
            copy = path.with_name(f"{path.stem} (1){path.suffix}")
            copy.write_bytes(data)
            copy_rel = str(PurePosixPath(rel).with_name(copy.name))
            self.summary.files.append(copy)
            self.summary.defective_files[copy_rel] = "duplicate_file"
            self._record(dfx.Defect("duplicate_file", source, entity, copy_rel, None,
                                    f"byte-identical re-delivery of {name}"))
        self.done[source] += 1
        if self.progress:
            self.progress(source, self.done[source], self.totals[source])
