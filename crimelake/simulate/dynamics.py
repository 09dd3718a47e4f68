"""How crime moves from month to month: seasonality, trend, near-repeat contagion and emerging hotspots.

Each month, a point's expected count for a category is the force's monthly volume for that category (seasonal,
trending) spread over points by a mix of the long-run intensity and a self-exciting part: last month's counts in the
point's cell and, at half weight, in its ring-1 neighbours, so that crime this month raises the chance of crime next
month in the same and adjacent cells. On top, a few hotspots per force emerge, intensify and fade on a schedule that
is written out as ground truth. Counts are Poisson given the expected values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from crimelake.simulate import catalogue as cat
from crimelake.simulate.rng import DYNAMICS, HOTSPOTS, stream
from crimelake.simulate.world import World

ETA = 0.40  # share of each month's spatial distribution driven by last month's counts
NEIGHBOUR_WEIGHT = 0.5  # a ring-1 neighbour's counts excite at this weight relative to the cell's own
CROSS_CATEGORY = 0.3  # how much all crime in a cell (not just the same category) excites
CELL_NOISE_SHAPE = 16.0  # gamma shape of month-to-month swings in a cell's intensity (coefficient of variation 0.25)
JITTER_KM = 0.15  # exact locations lie this close to the anonymous map point they are published at

HOTSPOT_GROUPS = {
    "asb": {"anti-social-behaviour": 0.7, "criminal-damage-arson": 0.3},
    "violence": {"violent-crime": 0.7, "public-order": 0.2, "robbery": 0.1},
    "burglary": {"burglary": 0.7, "vehicle-crime": 0.3},
    "shoplifting": {"shoplifting": 0.8, "other-theft": 0.2},
    "drugs": {"drugs": 0.6, "possession-of-weapons": 0.25, "robbery": 0.15},
}


@dataclass
class Hotspot:
    cell: str
    kind: str
    group: str
    start: int  # month offsets from the first simulated month; may lie outside the window
    peak: int
    end: int
    peak_rows: float  # extra expected rows per month at the peak, over the cell and its ring-1 neighbours
    category_share: np.ndarray
    point_share: np.ndarray  # over all points of the world; zero outside the hotspot

    def level(self, t: int) -> float:
        if t <= self.start or t >= self.end:
            return 0.0
        if t <= self.peak:
            return (t - self.start) / max(self.peak - self.start, 1)
        return (self.end - t) / max(self.end - self.peak, 1)


@dataclass
class Incidents:
    """One force-month of simulated incidents (street rows before publication)."""

    month: str
    point: np.ndarray
    category: np.ndarray
    lon: np.ndarray  # exact location, before snapping to the map point
    lat: np.ndarray

    def __len__(self) -> int:
        return len(self.point)


def month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_index(label: str) -> int:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", label):
        raise ValueError(f"{label!r} is not a month (YYYY-MM)")
    year, month = label.split("-")
    return int(year) * 12 + int(month) - 1


def _timing(kind: str, months: int, rng: np.random.Generator) -> tuple[int, int, int]:
    span = max(months, 12)
    if kind == "emerging":
        start = int(rng.integers(int(0.1 * span), int(0.45 * span) + 1))
        peak = start + int(rng.integers(4, 9))
        return start, peak, peak + int(rng.integers(8, 19))
    if kind == "flare":
        start = int(rng.integers(int(0.1 * span), int(0.6 * span) + 1))
        peak = start + int(rng.integers(2, 5))
        return start, peak, peak + int(rng.integers(2, 6))
    if kind == "fading":
        start = -int(rng.integers(6, 13))
        peak = int(rng.integers(-2, 3))
        return start, peak, int(rng.integers(int(0.3 * span), int(0.7 * span) + 1))
    start = -int(rng.integers(6, 13))  # intensifying: present before the window, strongest late in it
    peak = int(rng.integers(int(0.6 * span), span))
    return start, peak, peak + int(rng.integers(6, 13))


def plan_hotspots(world: World, rows_per_month: float, months: int, seed: int) -> list[Hotspot]:
    rng = stream(seed, HOTSPOTS, world.index)
    n = 2 if world.force.slug == "city-of-london" else 3 if rows_per_month < 1000 or world.force.slug == "btp" else 4
    kinds = ["emerging", "flare", "fading", "intensifying"]
    rng.shuffle(kinds)
    total = world.base.sum(axis=1)
    cell_weight = np.bincount(world.pt_cell, weights=total, minlength=len(world.cells))
    # Hotspots emerge where there is already some crime, but not in the very busiest cells.
    lo, hi = np.quantile(cell_weight, [0.5, 0.98])
    candidates = np.flatnonzero((cell_weight >= lo) & (cell_weight <= hi))
    adjacency = world.adjacency
    taken = np.zeros(len(world.cells), bool)
    out = []
    groups = [g for g in HOTSPOT_GROUPS if world.mix[cat.CAT[next(iter(HOTSPOT_GROUPS[g]))]] > 0]
    for i in range(n):
        free = candidates[~taken[candidates]]
        if len(free) == 0:
            break
        centre = int(rng.choice(free))
        ring = adjacency[centre].indices
        taken[centre] = True
        taken[ring] = True
        taken[adjacency[ring].indices] = True
        group = groups[int(rng.integers(len(groups)))]
        share = cat.mix_vector(HOTSPOT_GROUPS[group]) * (world.mix > 0)
        cell_share = np.zeros(len(world.cells))
        cell_share[centre] = 0.4
        cell_share[ring] = 0.6 / max(len(ring), 1)
        pts_share = cell_share[world.pt_cell] * total
        per_cell = np.bincount(world.pt_cell, weights=pts_share, minlength=len(world.cells))
        pts_share = np.where(per_cell[world.pt_cell] > 0, pts_share / np.maximum(per_cell[world.pt_cell], 1e-300), 0)
        pts_share = pts_share * cell_share[world.pt_cell]
        pts_share /= pts_share.sum()
        kind = kinds[i % len(kinds)]
        start, peak, end = _timing(kind, months, rng)
        # A hotspot of a rarer crime is smaller in rows, though still large against that crime's usual volume.
        size = np.sqrt(min(float(world.mix[share > 0].sum()) / 0.3, 1.0))
        out.append(Hotspot(cell=str(world.cells[centre]), kind=kind, group=group, start=start, peak=peak, end=end,
                           peak_rows=float(rows_per_month * rng.uniform(0.012, 0.025) * size),
                           category_share=share / share.sum(), point_share=pts_share))
    return out


def _season(month0: int) -> np.ndarray:
    m = month0 % 12 + 1
    return np.array([1 + a * np.cos(2 * np.pi * (m - peak) / 12) for a, peak in (cat.SEASON[s] for s in cat.SLUGS)])


def simulate(world: World, rows_per_month: float, first_month: int, months: int, seed: int,
             hotspots: list[Hotspot]) -> Iterator[Incidents]:
    """Yield the incidents of each month in order (the process is sequential: each month excites the next)."""
    n_pts, n_cells = world.n_points, len(world.cells)
    to_cell = sparse.csr_matrix((np.ones(n_pts), (np.arange(n_pts), world.pt_cell)), shape=(n_pts, n_cells))
    base = world.base
    base_cell = to_cell.T @ base
    within = base / np.maximum(base_cell[world.pt_cell], 1e-300)  # a point's share of its cell, per category
    trend_rng = stream(seed, DYNAMICS, world.index, 0)
    trend = np.array([cat.TREND.get(s, 0.0) for s in cat.SLUGS]) + trend_rng.normal(0, 0.03, cat.N_CAT)
    mix = world.mix

    def expected(t: int) -> np.ndarray:
        return rows_per_month * mix * _season(first_month + t) * np.exp(trend * t / 12)

    prev_cell = base_cell * expected(-1)[None, :]
    for t in range(months):
        rng = stream(seed, DYNAMICS, world.index, 1, t)
        mean = expected(t) * rng.lognormal(0, 0.03)
        nb = world.adjacency @ prev_cell
        excite_cell = prev_cell + NEIGHBOUR_WEIGHT * nb
        all_cell = excite_cell.sum(axis=1, keepdims=True) * mix[None, :]
        signal = excite_cell + CROSS_CATEGORY * all_cell
        x = signal[world.pt_cell] * within
        x /= np.maximum(x.sum(axis=0, keepdims=True), 1e-300)
        lam = mean[None, :] * ((1 - ETA) * base + ETA * x)
        for h in hotspots:
            level = h.level(t)
            if level > 0:
                lam += level * h.peak_rows * np.outer(h.point_share, h.category_share)
        # Busy and quiet months at a place (an event, a closed venue) beyond Poisson chance.
        lam *= rng.gamma(CELL_NOISE_SHAPE, 1 / CELL_NOISE_SHAPE, n_cells)[world.pt_cell, None]
        counts = rng.poisson(lam)
        pt, c = np.nonzero(counts)
        reps = counts[pt, c]
        point = np.repeat(pt, reps)
        category = np.repeat(c, reps)
        r = JITTER_KM * np.sqrt(rng.random(len(point)))
        theta = rng.random(len(point)) * 2 * np.pi
        lat = world.pt_lat[point] + r * np.sin(theta) / 110.57
        lon = world.pt_lon[point] + r * np.cos(theta) / (111.32 * np.cos(np.radians(world.pt_lat[point])))
        prev_cell = to_cell.T @ counts.astype(float)
        yield Incidents(month=month_label(first_month + t), point=point, category=category, lon=lon, lat=lat)
