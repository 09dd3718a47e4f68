"""The coverage ledger (gold/coverage) as a force x month grid: which force-months of each incident source
arrived complete, partial or not at all."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from crimelake import lake
from crimelake.config import Settings

STATUSES = ("complete", "partial", "missing")
# One glyph per cell, readable without colour too.
GLYPHS = {"complete": ("●", "green"), "partial": ("◐", "yellow"), "missing": ("✕", "bold red"), None: ("·", "dim")}
COLUMNS = ["source", "force", "month", "status", "rows", "geocoded_share", "lsoa_share", "trailing_median_rows",
           "volume_ratio", "flags"]


def load(settings: Settings, *, source: str | None = None, force: str | None = None,
         months: int | None = None) -> pa.Table:
    """The ledger, optionally one source, one force and the latest `months` months. FileNotFoundError when the
    lake has no ledger yet; ValueError for an unknown source or force or months < 1."""
    path = settings.gold("coverage")
    if not lake.table_exists(path):
        raise FileNotFoundError(f"no coverage ledger at {path}: run the pipeline first (crimelake run)")
    if months is not None and months < 1:
        raise ValueError(f"months must be at least 1, got {months}")
    from crimelake.release import version_to_read

    table = lake.read(path, columns=COLUMNS, version=version_to_read(settings, "gold/coverage"))
    for name, value in (("source", source), ("force", force)):
        if value is None:
            continue
        known = sorted(pc.unique(table.column(name)).to_pylist())
        if value not in known:
            raise ValueError(f"unknown {name} {value!r}; the ledger has {', '.join(known) or 'none'}")
        table = table.filter(pc.equal(table.column(name), value))
    if months is not None and table.num_rows:
        kept = sorted(pc.unique(table.column("month")).to_pylist())[-months:]
        table = table.filter(pc.is_in(table.column("month"), pa.array(kept)))
    return table.sort_by([("source", "ascending"), ("force", "ascending"), ("month", "ascending")])


@dataclass
class Grid:
    months: list[str]
    rows: list[tuple[str, str]]  # (source, force)
    cells: dict[tuple[str, str, str], dict] = field(default_factory=dict)  # (source, force, month) -> record

    def status(self, source: str, force: str, month: str) -> str | None:
        record = self.cells.get((source, force, month))
        return record["status"] if record else None

    def totals(self) -> dict[str, int]:
        tally = Counter(r["status"] for r in self.cells.values())
        return {s: tally.get(s, 0) for s in STATUSES}


def pivot(ledger: pa.Table) -> Grid:
    records = ledger.to_pylist()
    grid = Grid(months=sorted({r["month"] for r in records}),
                rows=sorted({(r["source"], r["force"]) for r in records}, key=lambda sf: (sf[1], sf[0])))
    grid.cells = {(r["source"], r["force"], r["month"]): r for r in records}
    return grid


def to_json(grid: Grid) -> str:
    return json.dumps({
        "months": grid.months,
        "totals": grid.totals(),
        "rows": [{"source": s, "force": f,
                  "months": {m: {k: grid.cells[(s, f, m)][k] for k in ("status", "rows", "volume_ratio", "flags")}
                             for m in grid.months if (s, f, m) in grid.cells}}
                 for s, f in grid.rows],
    }, indent=2)


MONTH_INITIALS = "JFMAMJJASOND"


def render(grid: Grid):
    """A compact grid as rich Text: one line per (force, source), one glyph per month with a space between
    years (so 44 forces by 36 months fit an 80-column terminal), year and month-initial header lines, then the
    legend and totals."""
    from rich.text import Text

    sources = {s for s, _ in grid.rows}
    span = f"{grid.months[0]}..{grid.months[-1]}" if grid.months else "no months"
    labels = [force + (f" ({source})" if len(sources) > 1 else "") for source, force in grid.rows]
    width = max([len(label) for label in labels] + [len("force")]) + 2
    years: list[tuple[str, list[str]]] = []
    for m in grid.months:
        if not years or years[-1][0] != m[:4]:
            years.append((m[:4], []))
        years[-1][1].append(m)
    out = Text(f"Coverage ledger, {span}\n", style="bold")
    # A year label fits over four months or more; over two or three its last two digits; over one, the title's
    # span says it.
    heads = [y if len(ms) >= 4 else y[2:] if len(ms) >= 2 else "" for y, ms in years]
    out.append(" " * width + " ".join(h.ljust(len(ms)) for h, (_, ms) in zip(heads, years, strict=True)) + "\n",
               style="dim")
    out.append("force".ljust(width) + " ".join("".join(MONTH_INITIALS[int(m[5:]) - 1] for m in ms)
                                                for _, ms in years) + "\n", style="dim")
    for label, (source, force) in zip(labels, grid.rows, strict=True):
        out.append(label.ljust(width))
        for k, (_, ms) in enumerate(years):
            if k:
                out.append(" ")
            for m in ms:
                glyph, style = GLYPHS[grid.status(source, force, m)]
                out.append(glyph, style=style)
        out.append("\n")
    totals = grid.totals()
    legend = "  ".join(f"{GLYPHS[s][0]} {s}" for s in STATUSES) + f"  {GLYPHS[None][0]} not expected"
    out.append(f"{legend}\n{totals['missing']} missing, {totals['partial']} partial, "
               f"{totals['complete']} complete force-months")
    return out
