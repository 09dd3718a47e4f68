"""Force-months that arrive incomplete: missing entirely, or partial (a fraction of the usual street rows).

Real deliveries have holes: a force misses a month's upload, or uploads a month with most of its records absent.
A missing force-month has no file in any of the force's own sources (data.police.uk street, outcomes and stop and
search, and its RMS export); councils' reports and social care indicators come from other publishers and still
arrive. A partial force-month publishes only a random `share` of the month's incidents: its street file, the
outcomes that follow them and its RMS export describe the same reduced set. The crime itself still happens (the
simulated process runs on, so the months around a gap are the same as without it); only its publication is cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from crimelake.simulate.dynamics import Incidents
from crimelake.simulate.rng import GAPS, stream

KINDS = ("missing", "partial")
PARTIAL_SHARE = (0.30, 0.45)  # range of the share of street rows a seeded partial month keeps
FIRST_GAP_MONTH = 3  # seeded gaps leave the first months alone, so every gap has some history before it
TRUTH_COLUMNS = ["force", "month", "kind", "share"]


@dataclass(frozen=True)
class Gap:
    """One incomplete force-month. `share` is the share of street rows published (0 when missing)."""

    force: str
    month: str
    kind: str
    share: float = 0.0


def _check(gaps: Sequence[Gap], forces: set[str], months: set[str]) -> list[Gap]:
    seen: set[tuple[str, str]] = set()
    for g in gaps:
        if g.kind not in KINDS:
            raise ValueError(f"gap {g.force} {g.month}: kind must be one of {KINDS}, not {g.kind!r}")
        if g.force not in forces:
            raise ValueError(f"gap {g.force} {g.month}: {g.force!r} is not a force of this run")
        if g.month not in months:
            raise ValueError(f"gap {g.force} {g.month}: {g.month!r} is not a month of this run")
        if g.kind == "partial" and not 0 < g.share < 1:
            raise ValueError(f"gap {g.force} {g.month}: a partial month's share must lie strictly between 0 and 1")
        if g.kind == "missing" and g.share != 0:
            raise ValueError(f"gap {g.force} {g.month}: a missing month publishes nothing (share 0)")
        if (g.force, g.month) in seen:
            raise ValueError(f"gap {g.force} {g.month}: listed twice")
        seen.add((g.force, g.month))
    return sorted(gaps, key=lambda g: (g.month, g.force))


def plan_gaps(gaps: int | Iterable[Gap] | None, forces: Sequence[str], months: Sequence[str], seed: int) -> list[Gap]:
    """The run's gaps: the given ones (checked), or `gaps` missing and `gaps` partial force-months drawn by seed.

    Seeded gaps fall in month FIRST_GAP_MONTH or later (earlier when the run is shorter, never the first month) and
    never twice on the same force-month.
    """
    if gaps is None or gaps == 0:
        return []
    if not isinstance(gaps, int):
        return _check(list(gaps), set(forces), set(months))
    if gaps < 0:
        raise ValueError("gaps must be a number of force-months (0 or more) or a list of gaps")
    first = min(FIRST_GAP_MONTH, len(months) - 1)
    slots = [(f, m) for m in months[first:] for f in sorted(forces)] if first >= 1 else []
    if 2 * gaps > len(slots):
        raise ValueError(f"{gaps} missing and {gaps} partial force-months do not fit in {len(slots)} force-months "
                         f"from month {first + 1} on: use more months or fewer gaps")
    rng = stream(seed, GAPS)
    pick = rng.choice(len(slots), size=2 * gaps, replace=False)
    shares = rng.uniform(*PARTIAL_SHARE, size=gaps)
    out = [Gap(*slots[i], "missing") for i in pick[:gaps]]
    out += [Gap(*slots[i], "partial", round(float(s), 3)) for i, s in zip(pick[gaps:], shares, strict=True)]
    return sorted(out, key=lambda g: (g.month, g.force))


def thin(inc: Incidents, share: float, rng: np.random.Generator) -> Incidents:
    """The incidents a partial month publishes: round(share * n) of them, chosen at random, order kept."""
    n = len(inc)
    keep = np.sort(rng.choice(n, size=int(round(share * n)), replace=False))
    return Incidents(month=inc.month, point=inc.point[keep], category=inc.category[keep], lon=inc.lon[keep],
                     lat=inc.lat[keep])


def truth_rows(gaps: Sequence[Gap]) -> list[dict]:
    return [{"force": g.force, "month": g.month, "kind": g.kind, "share": g.share} for g in gaps]
