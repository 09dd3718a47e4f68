"""Realistic delivery defects, injected on purpose and recorded, so tests can check that every one is caught.

Row defects hit each data row with probability `defect_rate` (the kind chosen among those that make sense for the
source) and every kind appears at least once per source and entity whenever the rate is above zero. File defects
are placed deterministically: one byte-identical re-delivery (" (1)" copy) and one file cut off part-way through a
row per source and entity, given enough files. A duplicated file carries no row defects, so whichever copy a reader
keeps, the recorded row defects stay true; row defects past a truncation point are not recorded (those rows are
gone).

Line numbers are physical, 1-based, with the header on line 1; no value ever spans lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crimelake.simulate.rng import DEFECTS, key_of, stream
from data_contracts.loader import Contract

ROW_KINDS = ("malformed_fields", "unbalanced_quote", "unknown_category", "bad_date", "coords_outside",
             "missing_coords", "unsuppressed_count")
FILE_KINDS = ("duplicate_file", "truncated_file")
UNKNOWN_LABELS = {"police_uk": "Cyber crime", "force_rms_ho": "999X", "force_rms_text": "Cyber crime",
                  "la_reports": "Pothole"}


@dataclass(frozen=True)
class Defect:
    kind: str
    source: str
    entity: str
    file: str  # path relative to the landing folder, with forward slashes
    line: int | None  # physical line, header = 1; None for a defect of the whole file
    detail: str


def applicable(contract: Contract) -> tuple[str, ...]:
    kinds = ["malformed_fields", "unbalanced_quote", "bad_date"]
    if contract.label_column and contract.source in UNKNOWN_LABELS:
        kinds.append("unknown_category")
    if contract.x and contract.y:
        kinds.append("coords_outside")
        if contract.coords_required:
            kinds.append("missing_coords")
    if contract.suppression:
        kinds.append("unsuppressed_count")
    return tuple(k for k in ROW_KINDS if k in kinds)


def bad_date(value: str, fmt: str) -> str:
    """A value in the contract's date format that names a day or month that does not exist."""
    if fmt == "%Y-%m":
        return value.replace("-", "/")
    if fmt == "%d/%m/%Y":
        return "32" + value[2:]
    if fmt == "quarter":
        return value[:6] + "5"
    return value[:8] + "32" + value[10:]  # ISO 8601 and %Y-%m-%d %H:%M:%S


@dataclass
class RowDefects:
    """Chosen row defects of one file: value edits are applied to the columns, line edits after rendering."""

    line_edits: dict[int, str]
    records: list[tuple[int, str, str]]  # (row, kind, detail)


def choose_rows(contract: Contract, columns: dict[str, np.ndarray], rate: float, owed: set[str], rel: str,
                seed: int, truth: np.ndarray | None = None) -> RowDefects:
    """Pick rows and kinds, edit `columns` in place for value defects, and say which lines to break."""
    rng = stream(seed, DEFECTS, key_of(rel))
    kinds = applicable(contract)
    n = len(next(iter(columns.values()))) if columns else 0
    out = RowDefects({}, [])
    if n == 0 or rate <= 0:
        return out
    header = contract.header
    hx = contract.column(contract.x).header if contract.x else None
    hy = contract.column(contract.y).header if contract.y else None
    count_col = contract.column(contract.suppression["column"]).header if contract.suppression else None
    eligible = {
        "coords_outside": (columns[hx] != "") if hx else None,
        "missing_coords": (columns[hx] != "") if hx else None,
        "unsuppressed_count": (columns[count_col] == "c") if count_col else None,
    }
    picked = rng.choice(n, size=min(int(rng.binomial(n, rate)), n), replace=False)
    wanted = [(int(r), kinds[int(rng.integers(len(kinds)))]) for r in picked]
    for kind in sorted(owed & set(kinds)):
        if kind not in {k for _, k in wanted}:
            wanted.append((-1, kind))
    used: set[int] = set()
    for row, kind in wanted:
        ok = eligible.get(kind)
        if row < 0 or row in used or (ok is not None and not ok[row]):
            free = np.ones(n, bool) if ok is None else ok.copy()
            free[list(used)] = False
            candidates = np.flatnonzero(free)
            if len(candidates) == 0:
                continue
            row = int(candidates[rng.integers(len(candidates))])
        used.add(row)
        detail = _apply(kind, row, contract, columns, header, hx, hy, count_col, truth, rng, out)
        out.records.append((row, kind, detail))
    return out


def _apply(kind, row, contract, columns, header, hx, hy, count_col, truth, rng, out) -> str:
    if kind == "malformed_fields":
        extra = bool(rng.integers(2))
        out.line_edits[row] = "extra" if extra else "short"
        return f"{'one field too many' if extra else 'one field too few'} (expected {len(header)})"
    if kind == "unbalanced_quote":
        out.line_edits[row] = "quote"
        return "opening quote never closed"
    if kind == "unknown_category":
        col = contract.column(contract.label_column).header
        columns[col][row] = UNKNOWN_LABELS[contract.source]
        return f"{col} = {UNKNOWN_LABELS[contract.source]!r} is not in the contract's label mapping"
    if kind == "bad_date":
        col = contract.column(contract.month_column).header
        old = columns[col][row]
        columns[col][row] = bad_date(old, contract.month_format)
        return f"{col} = {columns[col][row]!r} is not a valid date"
    if kind == "coords_outside":
        if contract.crs == "EPSG:27700":
            columns[hx][row] = str(int(columns[hx][row]) + 1_000_000)
            return f"{hx} moved 1,000 km east, outside England and Wales"
        if rng.integers(2):
            columns[hx][row], columns[hy][row] = columns[hy][row], columns[hx][row]
            return f"{hx} and {hy} swapped"
        columns[hx][row] = f"{12.5 + rng.random() * 0.4:.6f}"
        return f"{hx} = {columns[hx][row]}, in central Europe"
    if kind == "missing_coords":
        columns[hx][row] = ""
        columns[hy][row] = ""
        return f"{hx}/{hy} empty though the contract requires a location"
    if kind == "unsuppressed_count":
        value = int(truth[row]) if truth is not None else int(rng.integers(1, 5))
        columns[count_col][row] = str(value)
        return f"{count_col} = {value} published instead of 'c' (disclosure breach)"
    raise ValueError(kind)


def edit_line(line: str, edit: str, delimiter: str) -> str:
    if edit == "short":
        return line.rsplit(delimiter, 1)[0]
    if edit == "extra":
        return line + delimiter + "UNEXPECTED"
    return '"' + line


def truncate(lines: list[str], delimiter: str, rng: np.random.Generator) -> tuple[int, str] | None:
    """Where to cut a file (a data row index) and what is left of that row: cut before its middle delimiter."""
    if len(lines) < 3:
        return None
    k = int(len(lines) * rng.uniform(0.4, 0.9))
    line = lines[k]
    cuts = [i for i, ch in enumerate(line) if ch == delimiter]
    if len(cuts) < 2:
        return None
    partial = line[: max(cuts[len(cuts) // 2] - 1, 0)]
    return (k, partial) if partial else None
