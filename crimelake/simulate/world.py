"""The simulated geography of one force: its areas, anonymous map points and their long-run crime intensity.

Crime happens at a fixed set of map points, as data.police.uk snaps every location to an anonymous point. A
point's long-run intensity for each category mixes: towns weighted by population, persistent micro-hotspots
(lognormal weights at point and cell level), the kind of place (shops, night-time economy, car parks), the area's
population and deprivation, and a diffuse background. Cell intensities are then given a fixed lognormal spread
(by rank), which is what holds the share of crime in the top 1% and 5% of cells near the real archive's.
"""

from __future__ import annotations

from dataclasses import dataclass

import h3
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.stats import norm

from crimelake.reference.forces import FORCES, Force
from crimelake.simulate import catalogue as cat
from crimelake.simulate.areas import KM_LAT, KM_LON, build_areas, town_arrays, town_distances
from crimelake.simulate.places import point_names
from crimelake.simulate.rng import WORLD, force_index, stream

KINDS = ("street", "shop", "night", "parking", "poi")
STREET, SHOP, NIGHT, PARKING, POI = range(len(KINDS))

# Per category: (deprivation gradient, town-centre pull, point-specific spread)
SPATIAL = {
    "violent-crime": (0.35, 1.0, 0.35), "anti-social-behaviour": (0.35, 0.9, 0.45), "public-order": (0.30, 1.3, 0.4),
    "criminal-damage-arson": (0.35, 0.2, 0.4), "other-theft": (0.10, 1.3, 0.45), "shoplifting": (0.10, 1.2, 0.5),
    "vehicle-crime": (0.15, 0.2, 0.5), "burglary": (0.25, -0.8, 0.5), "drugs": (0.45, 1.0, 0.6),
    "other-crime": (0.25, 0.4, 0.4), "bicycle-theft": (0.0, 1.4, 0.6), "theft-from-the-person": (0.10, 2.2, 0.5),
    "possession-of-weapons": (0.40, 1.0, 0.55), "robbery": (0.40, 1.6, 0.5),
}
# Multipliers by kind of place (street, shop, night, parking, poi); default 1.
PLACE_BOOST = {
    "shoplifting": (0.04, 40, 1, 1, 1), "other-theft": (1, 2.5, 1.5, 1.5, 2), "theft-from-the-person": (1, 2, 3, 1, 1.5),
    "violent-crime": (1, 1.2, 3, 1, 1.3), "public-order": (1, 1.5, 3, 1, 1.2), "anti-social-behaviour": (1, 1.5, 2.5, 1.5, 1.5),
    "drugs": (1, 1, 2.5, 1.5, 1), "robbery": (1, 1.5, 2.5, 1, 1), "possession-of-weapons": (1, 1, 3, 1, 1),
    "vehicle-crime": (1.2, 1.2, 1, 6, 1), "criminal-damage-arson": (1, 1, 1.5, 2, 1.2), "burglary": (1.5, 0.8, 0.5, 0.5, 0.8),
    "bicycle-theft": (0.7, 1.5, 1, 2, 3),
}
SIGMA_POINT = 1.0  # shared point attractor (street corners, estates, venues)
SIGMA_CELL = 1.05  # micro-hotspots at cell scale
BACKGROUND = 0.04  # diffuse share spread evenly over points
SIGMA_TARGET = 1.55  # spread (log scale) of long-run cell intensities
DEPRIVATION_GRADIENT = 0.5  # log crime per resident per standard deviation of deprivation
POINTS_PER_ANCHOR = 5
CLUSTER_KM = 0.12


@dataclass
class World:
    force: Force
    index: int
    areas: pd.DataFrame
    area_z: np.ndarray
    pt_lon: np.ndarray
    pt_lat: np.ndarray
    pt_area: np.ndarray
    pt_cell: np.ndarray
    pt_kind: np.ndarray
    pt_centre: np.ndarray
    pt_town: np.ndarray
    pt_name: np.ndarray
    cells: np.ndarray
    adjacency: sparse.csr_matrix
    base: np.ndarray  # (points, categories), each column sums to 1
    mix: np.ndarray
    ward: np.ndarray | None = None  # per area, filled by the sources that publish wards
    postcode: np.ndarray | None = None

    def __post_init__(self) -> None:
        # Published text of each map point, formatted once: many incidents share a point.
        self.pt_lon_text = np.array([f"{x:.6f}" for x in self.pt_lon.tolist()], dtype=object)
        self.pt_lat_text = np.array([f"{x:.6f}" for x in self.pt_lat.tolist()], dtype=object)
        self.pt_location = np.array([f"On or near {n}" for n in self.pt_name], dtype=object)
        self.lsoa_code = self.areas["lsoa_code"].to_numpy(dtype=object)
        self.lsoa_name = self.areas["lsoa_name"].to_numpy(dtype=object)

    @property
    def n_points(self) -> int:
        return len(self.pt_lon)


def _neighbours(cells: np.ndarray) -> sparse.csr_matrix:
    pos = {c: i for i, c in enumerate(cells)}
    rows, cols = [], []
    for i, c in enumerate(cells):
        for n in h3.grid_ring(c, 1):
            j = pos.get(n)
            if j is not None:
                rows.append(i)
                cols.append(j)
    n = len(cells)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def force_mix(force: Force, seed: int) -> np.ndarray:
    """The force's category mix: its real one where it is unusual, else the national one, varied a little."""
    if force.slug in cat.SPECIAL_MIX:
        return cat.mix_vector(cat.SPECIAL_MIX[force.slug])
    rng = stream(seed, WORLD, force_index(force.slug), 1)
    return rng.dirichlet(TERRITORIAL_MIX * 1500)


def _territorial_mix() -> np.ndarray:
    """National mix with BTP's and the City's unusual mixes taken out, so the national total matches calibration."""
    total = sum(f.monthly_rows for f in FORCES)
    rest = cat.NATIONAL_MIX * total
    for slug, shares in cat.SPECIAL_MIX.items():
        rows = next(f.monthly_rows for f in FORCES if f.slug == slug)
        rest = rest - cat.mix_vector(shares) * rows
    return rest / rest.sum()


TERRITORIAL_MIX = _territorial_mix()


def _spread_cells(base: np.ndarray, mix: np.ndarray, pt_cell: np.ndarray, n_cells: int) -> np.ndarray:
    """Give cells intensities that follow a lognormal of fixed spread, keeping the simulated order of cells.

    The random ingredients decide which cells are hot; this step decides how hot, so that the concentration of
    crime is as stable from force to force (and seed to seed) as it is in the real archive.
    """
    total = (base / base.sum(axis=0, keepdims=True)) @ mix
    cell = np.bincount(pt_cell, weights=total, minlength=n_cells)
    rank = np.empty(n_cells)
    rank[np.argsort(cell, kind="stable")] = np.arange(n_cells)
    # A force with few cells (the City of London) needs a wider spread for the same measured concentration: its
    # counts per cell are larger, so chance adds less to the busiest cells' share.
    sigma = SIGMA_TARGET + (0.25 if n_cells < 300 else 0.0)
    target = np.exp(sigma * norm.ppf((rank + 0.5) / n_cells))
    return base * (target / np.maximum(cell, 1e-300))[pt_cell, None]


def _areas_follow_people(base: np.ndarray, mix: np.ndarray, pt_area: np.ndarray, pop: np.ndarray, z: np.ndarray,
                         rng: np.random.Generator) -> np.ndarray:
    """Scale each area's crime to its population and deprivation, keeping the places within it as they are.

    Recorded crime per resident is several times higher in the most deprived areas than in the least deprived.
    Applied before cells are given their final spread, so it decides which cells are hot, not how hot.
    """
    total = (base / base.sum(axis=0, keepdims=True)) @ mix
    current = np.bincount(pt_area, weights=total, minlength=len(pop))
    wanted = pop * np.exp(DEPRIVATION_GRADIENT * z) * rng.lognormal(0, 0.3, len(pop))
    factor = np.divide(wanted, current, out=np.zeros_like(wanted), where=current > 0)
    return base * factor[pt_area, None]


def build_world(force: Force, seed: int, n_points: int, h3_resolution: int) -> World:
    """The force's areas, about `n_points` map points, their cells at `h3_resolution` and long-run intensities."""
    fi = force_index(force.slug)
    areas, z = build_areas(force, seed)
    rng = stream(seed, WORLD, fi, 2)
    pop = areas["population"].to_numpy(float)
    share = pop**0.9 / (pop**0.9).sum()
    # Map points come in clusters (a street, an estate, a parade of shops) around anchors spread like the population.
    # Every area has at least one cluster: every real LSOA records some crime over a year.
    n_anchor = max(n_points // POINTS_PER_ANCHOR, len(areas))
    per_area = 1 + rng.multinomial(n_anchor - len(areas), share)
    anchor_area = np.repeat(np.arange(len(areas)), per_area)
    r = 1.0 * np.sqrt(rng.random(n_anchor))  # km, inside the resolution-7 hexagon's inscribed circle
    theta = rng.random(n_anchor) * 2 * np.pi
    clat = areas["centroid_lat"].to_numpy()[anchor_area]
    alat = clat + r * np.sin(theta) / KM_LAT
    alon = areas["centroid_lon"].to_numpy()[anchor_area] + r * np.cos(theta) / (KM_LON * np.cos(np.radians(clat)))
    anchor = np.repeat(np.arange(n_anchor), 1 + rng.multinomial(max(n_points - n_anchor, 0), np.full(n_anchor, 1 / n_anchor)))
    pt_area = anchor_area[anchor]
    n = len(anchor)
    r = CLUSTER_KM * np.sqrt(rng.random(n))
    theta = rng.random(n) * 2 * np.pi
    lat = alat[anchor] + r * np.sin(theta) / KM_LAT
    lon = alon[anchor] + r * np.cos(theta) / (KM_LON * np.cos(np.radians(alat[anchor])))

    _, _, w = town_arrays(force)
    d = town_distances(force, lat, lon)
    radius = 0.3 + 0.05 * np.sqrt(w)
    centre = np.exp(-((d / radius[None, :]) ** 2)).max(axis=1)
    # Shops, night-time venues and car parks crowd town centres; the rest are streets.
    p = np.stack([0.03 + 0.22 * centre, 0.005 + 0.2 * centre, 0.04 + 0.1 * centre, np.full(n, 0.04)], axis=1)
    kind = np.array([SHOP, NIGHT, PARKING, POI, STREET])[(rng.random(n)[:, None] >= np.cumsum(p, axis=1)).sum(axis=1)]

    town = d.argmin(axis=1)
    names = point_names(force, kind, town, rng)
    cell_str = np.array([h3.latlng_to_cell(a, b, h3_resolution) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)])
    cells, pt_cell = np.unique(cell_str, return_inverse=True)

    g_point = rng.standard_normal(n) * SIGMA_POINT
    g_cell = (rng.standard_normal(len(cells)) * SIGMA_CELL)[pt_cell]
    base = np.empty((n, cat.N_CAT))
    for c, slug in enumerate(cat.SLUGS):
        dep, pull, spread = SPATIAL[slug]
        boost = np.asarray(PLACE_BOOST.get(slug, (1, 1, 1, 1, 1)), float)[kind]
        logw = g_point + g_cell + spread * rng.standard_normal(n) + dep * z[pt_area] + pull * centre
        base[:, c] = np.exp(logw) * boost
    mix = force_mix(force, seed)
    base = _areas_follow_people(base, mix, pt_area, areas["population"].to_numpy(float), z, rng)
    base = _spread_cells(base, mix, pt_cell, len(cells))
    base = (1 - BACKGROUND) * base / base.sum(axis=0, keepdims=True) + BACKGROUND / n
    return World(force=force, index=fi, areas=areas, area_z=z, pt_lon=lon, pt_lat=lat, pt_area=pt_area,
                 pt_cell=pt_cell, pt_kind=kind, pt_centre=centre, pt_town=town, pt_name=names, cells=cells,
                 adjacency=_neighbours(cells), base=base, mix=mix)
