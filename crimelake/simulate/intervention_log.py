"""Interventions with a known effect, planted in the simulated incidents and written as a delivered log.

A demo run plants a few interventions (DESIGN) in the busiest cells of its territorial forces: during the
intervention, each incident of the targeted forecast group in the treated cells is prevented with probability
1 - rate ratio, and a `displacement` share of the prevented incidents happens instead at a map point of the ring
of cells around the area (k = 1, `ml.interventions.displacement_ring`). Crime outside the treated area, the ring and the period is untouched, and the
simulated process runs on as before, so the effect is exactly what is planted. The log goes to
`interventions/<last month>/interventions-<last month>-demo.csv` (the form `crimelake interventions add` writes)
and the truth to `reference/interventions_truth.csv`. Everything is seeded from the run seed.
"""

from __future__ import annotations

import calendar
import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h3
import numpy as np

from crimelake.reference.forces import force_by_slug
from crimelake.simulate.catalogue import SLUGS
from crimelake.simulate.dynamics import Incidents, month_label
from crimelake.simulate.world import World
from data_contracts.loader import default_contracts, load_taxonomy
from ml.interventions import displacement_ring

INTERVENTIONS = 11  # random stream number, apart from rng's own purposes (0-10)
MIN_MONTHS = 12  # a run shorter than this has too little history before an intervention to evaluate it
# (kind, targeted group, true rate ratio, displacement share): two that work, one that does nothing, one that works
# but pushes half of what it prevents into the surrounding ring. Further interventions repeat the design.
DESIGN: tuple[tuple[str, str, float, float], ...] = (
    ("hot_spot_patrol", "violence", 0.75, 0.0),
    ("problem_oriented_policing", "all_crime", 0.75, 0.0),
    ("cctv", "theft", 1.0, 0.0),
    ("hot_spot_patrol", "all_crime", 0.75, 0.5),
)
# The planted rate ratio and displacement share, and what the draw gave: the targeted crimes that would have
# happened in the treated cells during the intervention, those prevented, and those moved to the ring.
TRUTH_COLUMNS = ["intervention_id", "group", "true_rate_ratio", "displacement_share", "force", "start_month",
                 "end_month", "n_cells", "targeted_without", "prevented", "displaced"]
TOP_SHARE = 0.03  # an area is centred on one of this share of the force's cells busiest for the targeted group
MIN_FORCE_ROWS = 2000  # a force publishing fewer street rows a month (the City of London) has too few cells for
# several areas with rings apart
AREA_K = 2  # an area is a busy cell and the cells within this many rings of it: about 2 km2 at resolution 9
MIN_GAP = 2 * (AREA_K + 1) + 1  # grid distance between two areas' centres: no area or ring touches another's


@dataclass(frozen=True)
class Planted:
    id: str
    kind: str
    force: str
    group: str
    rate_ratio: float
    displacement: float
    start: int  # month offsets into the run, inclusive
    end: int
    cells: tuple[str, ...] = ()
    ring: tuple[str, ...] = ()


def _group_categories(group: str) -> np.ndarray:
    tax = load_taxonomy()
    return np.array([group in tax.by_slug(s).groups for s in SLUGS])


def plan(n: int, forces: Sequence, n_months: int) -> list[Planted]:
    """The run's interventions without their cells (chosen once each force's world exists): spread over the
    territorial forces in turn (the larger ones, when the run has any), each running for the run's last months
    but three: from nine months before its end or its middle, whichever is later. In a 24-month demo that leaves
    15 months before the start, room for the evaluator's baseline year and a matching window before it."""
    if n < 0:
        raise ValueError("interventions must be 0 or more")
    if not n:
        return []
    territorial = [f.slug for f in forces if f.is_territorial]
    territorial = [s for s in territorial if force_by_slug(s).monthly_rows >= MIN_FORCE_ROWS] or territorial
    if not territorial:
        raise ValueError("interventions are planted in territorial forces: the run has none")
    if n_months < MIN_MONTHS:
        raise ValueError(f"interventions need a run of at least {MIN_MONTHS} months (history before they start)")
    start, end = max(n_months // 2, n_months - 9), n_months - 3
    out = []
    for i in range(n):
        kind, group, rr, disp = DESIGN[i % len(DESIGN)]
        out.append(Planted(f"DEMO-{i + 1:02d}", kind, territorial[i % len(territorial)], group, rr, disp, start, end))
    return out


def place(planted: list[Planted], world: World, strict: bool = True) -> list[Planted]:
    """Give the force's interventions their cells: the busiest cell for the targeted group not near another
    intervention, with the cells around it (those with map points: where crime can happen). A force too small for
    all of its share raises, or with ``strict`` off (the preset's default number) plants as many as fit."""
    mine = [p for p in planted if p.force == world.force.slug]
    if not mine:
        return []
    known = set(world.cells.tolist())
    centres: list[str] = []
    out = []
    for p in mine:
        cats = _group_categories(p.group)
        weight = np.bincount(world.pt_cell, weights=world.base[:, cats] @ world.mix[cats], minlength=len(world.cells))
        top = np.argsort(-weight, kind="stable")[:max(1, int(TOP_SHARE * len(world.cells)))]
        free = [int(i) for i in top if all(h3.grid_distance(world.cells[i], c) >= MIN_GAP for c in centres)]
        if not free:
            if not strict:
                break
            raise ValueError(f"no room for another intervention in {world.force.slug}: plant fewer")
        centre = str(world.cells[free[0]])
        centres.append(centre)
        cells = sorted(set(h3.grid_disk(centre, AREA_K)) & known)
        ring = sorted(displacement_ring(cells, 1) & known)
        out.append(Planted(**{**p.__dict__, "cells": tuple(cells), "ring": tuple(ring)}))
    return out


def apply(inc: Incidents, t: int, placed: list[Planted], world: World, rng: np.random.Generator,
          tally: dict[str, list[int]] | None = None) -> Incidents:
    """The incidents of month `t` with each running intervention's effect: targeted incidents in its cells thinned
    to the rate ratio, a displacement share of the prevented ones moved to a point of its ring (order kept).
    `tally` adds up, per intervention id, [targeted, prevented, displaced]."""
    running = [p for p in placed if p.start <= t <= p.end]
    if not running or not len(inc):
        return inc
    cell_of = world.cells[world.pt_cell[inc.point]]
    keep = np.ones(len(inc), dtype=bool)
    point, lon, lat = inc.point.copy(), inc.lon.copy(), inc.lat.copy()
    for p in running:
        hit = np.isin(cell_of, p.cells) & _group_categories(p.group)[inc.category] & keep
        idx = np.flatnonzero(hit)
        prevented = idx[rng.random(len(idx)) >= p.rate_ratio]
        moved = prevented[rng.random(len(prevented)) < p.displacement] if p.ring else prevented[:0]
        ring_points = np.flatnonzero(np.isin(world.cells[world.pt_cell], p.ring))
        if len(moved) and len(ring_points):
            to = ring_points[rng.integers(len(ring_points), size=len(moved))]
            point[moved], lon[moved], lat[moved] = to, world.pt_lon[to], world.pt_lat[to]
        else:
            moved = moved[:0]
        keep[np.setdiff1d(prevented, moved)] = False
        if tally is not None:
            counts = tally.setdefault(p.id, [0, 0, 0])
            counts[0] += len(idx)
            counts[1] += len(prevented)
            counts[2] += len(moved)
    return Incidents(month=inc.month, point=point[keep], category=inc.category[keep], lon=lon[keep], lat=lat[keep])


def _last_day(month: str) -> str:
    y, m = (int(x) for x in month.split("-"))
    return f"{month}-{calendar.monthrange(y, m)[1]:02d}"


def write(landing: Path, placed: list[Planted], first: int, n_months: int, tally: dict[str, list[int]]) -> list[Path]:
    """The log (delivered in the run's last month) and the truth; the paths written."""
    if not placed:
        return []
    delivered = month_label(first + n_months - 1)
    header = default_contracts()[("interventions", "log")].header
    log = landing / "interventions" / delivered / f"interventions-{delivered}-demo.csv"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for p in placed:
            row = {"intervention_id": p.id, "kind": p.kind, "area_type": "h3", "area": ";".join(p.cells),
                   "force": p.force, "start_date": f"{month_label(first + p.start)}-01",
                   "end_date": _last_day(month_label(first + p.end)), "agency": force_by_slug(p.force).name,
                   "target_groups": p.group, "description": f"Simulated {p.kind.replace('_', ' ')} against {p.group}"}
            w.writerow([row[h] for h in header])
    truth = landing / "reference" / "interventions_truth.csv"
    truth.parent.mkdir(parents=True, exist_ok=True)
    with truth.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(TRUTH_COLUMNS)
        for p in placed:
            w.writerow([p.id, p.group, p.rate_ratio, p.displacement, p.force, month_label(first + p.start),
                        month_label(first + p.end), len(p.cells), *tally.get(p.id, [0, 0, 0])])
    return [log, truth]
