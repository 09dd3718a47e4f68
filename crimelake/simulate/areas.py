"""Synthetic areas (LSOAs) of a force: one per H3 resolution-7 cell of its populated area.

Real LSOA boundaries are not available offline. Each area gets a simulated population (towns weighted by their
population, spread out with distance from the centre, over a rural floor), a latent deprivation that drives crime,
and an Index of Multiple Deprivation decile related to that deprivation but not identical to it. Codes look like
ONS codes (E01/W01 and six digits) but name no real area.
"""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
from scipy.stats import norm

from crimelake.reference.forces import Force
from crimelake.simulate.places import place_base
from crimelake.simulate.rng import WORLD, force_index, stream

AREA_RES = 7
AREA_KM2 = 5.16  # mean area of an H3 resolution-7 cell
KM_LAT = 110.57
KM_LON = 111.32


def km_per_degree_lon(lat: np.ndarray | float) -> np.ndarray | float:
    return KM_LON * np.cos(np.radians(lat))


def town_arrays(force: Force) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = force.towns
    return (np.array([x.lat for x in t]), np.array([x.lon for x in t]), np.array([x.weight for x in t], float))


def town_distances(force: Force, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Distance in km from each location to each town centre, shape (n, towns)."""
    tlat, tlon, _ = town_arrays(force)
    dx = (lon[:, None] - tlon[None, :]) * km_per_degree_lon(lat)[:, None]
    dy = (lat[:, None] - tlat[None, :]) * KM_LAT
    return np.hypot(dx, dy)


def _reach_km(force: Force, weight: np.ndarray) -> np.ndarray:
    if force.slug == "btp":
        return np.full_like(weight, 2.5)
    if force.slug == "city-of-london":
        return np.full_like(weight, 1.5)
    return np.clip(4 + 1.1 * np.sqrt(weight), 5, 22)


def _town_scale(weight: np.ndarray) -> np.ndarray:
    """Radius (km) over which a town's population density falls by e."""
    return np.maximum(0.2 * np.sqrt(weight), 0.5)


def _footprint(force: Force) -> np.ndarray:
    _, _, w = town_arrays(force)
    reach = _reach_km(force, w)
    found: set[str] = set()
    for town, r in zip(force.towns, reach, strict=True):
        found.update(h3.grid_disk(h3.latlng_to_cell(town.lat, town.lon, AREA_RES), int(np.ceil(r / 2.1)) + 1))
    cells = np.array(sorted(found))
    ll = np.array([h3.cell_to_latlng(c) for c in cells])
    lo, la, hi_lo, hi_la = force.bbox
    pad = 0.02
    inside = (ll[:, 1] >= lo - pad) & (ll[:, 1] <= hi_lo + pad) & (ll[:, 0] >= la - pad) & (ll[:, 0] <= hi_la + pad)
    near = (town_distances(force, ll[:, 0], ll[:, 1]) <= reach[None, :]).any(axis=1)
    keep = inside & near
    return cells[keep]


def _smooth(cells: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Average of each cell's value with its ring-1 neighbours in the set: spatially correlated noise."""
    pos = {c: i for i, c in enumerate(cells)}
    out = np.empty_like(values)
    for i, c in enumerate(cells):
        idx = [pos[n] for n in h3.grid_disk(c, 1) if n in pos]
        out[i] = values[idx].mean()
    return out


def _area_names(force: Force, centroid_lat, centroid_lon, la_index) -> list[str]:
    """LSOA-style names: the authority's name (or the nearest town's) and a number ordered outward, e.g. 'Bedford 007B'."""
    d = town_distances(force, centroid_lat, centroid_lon)
    nearest = d.argmin(axis=1)
    base = [force.local_authorities[j].name if j >= 0 else place_base(force, force.towns[t].name)
            for j, t in zip(la_index, nearest, strict=True)]
    order = np.lexsort((d[np.arange(len(base)), nearest], np.array(base)))
    names = [""] * len(base)
    seen: dict[str, int] = {}
    for i in order:
        k = seen.get(base[i], 0)
        seen[base[i]] = k + 1
        names[i] = f"{base[i]} {k // 4 + 1:03d}{'ABCD'[k % 4]}"
    return names


def build_areas(force: Force, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The force's synthetic LSOAs and each one's latent deprivation (higher is more deprived)."""
    fi = force_index(force.slug)
    rng = stream(seed, WORLD, fi, 0)
    cells = _footprint(force)
    ll = np.array([h3.cell_to_latlng(c) for c in cells])
    lat, lon = ll[:, 0], ll[:, 1]
    _, _, w = town_arrays(force)
    s = _town_scale(w)
    d = town_distances(force, lat, lon)
    density = (w[None, :] * 1000 / (2 * np.pi * s[None, :] ** 2) * np.exp(-d / s[None, :])).sum(axis=1) + 40
    pop = density * AREA_KM2 * rng.lognormal(0, 0.3, len(cells))
    if force.is_territorial:
        pop *= force.monthly_rows * 110 / pop.sum()
    pop = np.maximum(np.round(pop), 50).astype(int)

    core = np.log(density)
    core = (core - core.mean()) / (core.std() or 1)
    field = _smooth(cells, rng.standard_normal(len(cells)))
    field = (field - field.mean()) / (field.std() or 1)
    z = 0.5 * core + 0.8 * field + 0.4 * rng.standard_normal(len(cells))
    z = (z - z.mean()) / (z.std() or 1)
    # IMD is related to the crime-driving deprivation but not identical to it; forces differ in overall deprivation.
    score = z + 0.7 * rng.standard_normal(len(cells)) + rng.normal(0, 0.35)
    decile = np.clip(10 - np.floor(norm.cdf(score / 1.25) * 10), 1, 10).astype(int)

    la_index = np.full(len(cells), -1)
    if force.local_authorities:
        ladist = np.stack([np.hypot((lon - a.lon) * km_per_degree_lon(a.lat), (lat - a.lat) * KM_LAT) / a.radius_km
                           for a in force.local_authorities], axis=1)
        best = ladist.argmin(axis=1)
        la_index = np.where(ladist[np.arange(len(cells)), best] <= 1.0, best, -1)
    names = _area_names(force, lat, lon, la_index)
    prefix = "W01" if force.welsh else "E01"
    order = np.argsort(np.array(names), kind="stable")
    codes = np.empty(len(cells), dtype=object)
    codes[order] = [f"{prefix}{fi * 20000 + k + 1:06d}" for k in range(len(cells))]
    la_codes = [force.local_authorities[j].code if j >= 0 else "" for j in la_index]
    areas = pd.DataFrame({
        "lsoa_code": codes, "lsoa_name": names, "force": force.slug, "local_authority_code": la_codes,
        "h3_res7": cells, "centroid_lon": lon.round(6), "centroid_lat": lat.round(6), "population": pop,
        "imd_decile": decile,
    })
    return areas, z
