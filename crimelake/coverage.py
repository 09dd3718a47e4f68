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
    table = lake.read(path, columns=COLUMNS)
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


def render(grid: Grid):
    """A rich Table: one row per (source, force), one column per month, one glyph per cell, then legend and
    totals as its caption."""
    from rich.table import Table
    from rich.text import Text

    sources = {s for s, _ in grid.rows}
    span = f"{grid.months[0]}..{grid.months[-1]}" if grid.months else "no months"
    table = Table(title=f"Coverage ledger, {span}", box=None, pad_edge=False, padding=(0, 1))
    table.add_column("force", no_wrap=True)
    if len(sources) > 1:
        table.add_column("source", no_wrap=True, style="dim")
    previous_year = None
    for m in grid.months:
        year = m[:4]
        table.add_column(f"{year if year != previous_year else ''}\n{m[5:]}", justify="center", no_wrap=True)
        previous_year = year
    for source, force in grid.rows:
        glyphs = []
        for m in grid.months:
            glyph, style = GLYPHS[grid.status(source, force, m)]
            glyphs.append(Text(glyph, style=style))
        table.add_row(force, *([source] if len(sources) > 1 else []), *glyphs)
    totals = grid.totals()
    legend = "  ".join(f"{GLYPHS[s][0]} {s}" for s in STATUSES) + f"  {GLYPHS[None][0]} not expected"
    table.caption = (f"{legend}\n{totals['missing']} missing, {totals['partial']} partial, "
                     f"{totals['complete']} complete force-months")
    return table
