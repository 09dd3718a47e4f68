"""Council sources: anti-social behaviour and environmental reports, and children's social care indicators.

Reports cluster where the force's anti-social behaviour clusters (half of each month's reports follow the long-run
pattern, half follow that month's police-recorded anti-social behaviour, so emerging hotspots show in both).
Social care counts follow population and deprivation; counts of 1 to 4 are suppressed at source as "c".
"""

from __future__ import annotations

import numpy as np

from crimelake.reference.forces import FORCES, LocalAuthority
from crimelake.simulate import catalogue as cat
from crimelake.simulate.areas import KM_LAT, KM_LON
from crimelake.simulate.dynamics import Incidents
from crimelake.simulate.police_uk import choose, month_days
from crimelake.simulate.world import World

INDICATORS = tuple(cat.SOCIAL_CARE_RATES)
_HOURS = np.array([2, 1, 1, 0.5, 0.5, 0.5, 1, 2, 4, 6, 7, 7, 7, 7, 7, 6.5, 6, 6, 5.5, 5, 5, 4.5, 4, 3], float)


def _candidates(slug: str):
    words = [w for w in slug.split("-") if w]
    yield ("".join(w[0] for w in words)[:4] if len(words) > 1 else words[0][:3]).upper().ljust(2, "X")
    letters = "".join(words).upper()
    for j in range(1, len(letters)):
        for k in range(j + 1, len(letters)):
            yield letters[0] + letters[j] + letters[k]


def _prefixes() -> dict[str, str]:
    """Case reference prefixes, unique across every council (Cardiff and Carmarthenshire cannot both be CAR):
    councils are taken in reference order, each gets its first candidate no earlier council holds."""
    taken: dict[str, str] = {}
    for force in FORCES:
        for la in force.local_authorities:
            taken[la.slug] = next(c for c in _candidates(la.slug) if c not in taken.values())
    return taken


_PREFIXES = _prefixes()


def case_prefix(la: LocalAuthority) -> str:
    return _PREFIXES.get(la.slug) or next(_candidates(la.slug))


def la_areas(world: World, la: LocalAuthority) -> np.ndarray:
    return np.flatnonzero(world.areas["local_authority_code"].to_numpy() == la.code)


def report_rows(world: World, la: LocalAuthority, inc: Incidents, rows_per_month: float,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    areas = la_areas(world, la)
    pts = np.flatnonzero(np.isin(world.pt_area, areas))
    base = world.base[pts, cat.ASB] if world.mix[cat.ASB] > 0 else world.base[pts].sum(axis=1)
    asb_now = np.bincount(inc.point[inc.category == cat.ASB], minlength=world.n_points)[pts].astype(float)
    expected = rows_per_month * max(world.mix[cat.ASB], 0.1) * base.sum()
    month = int(inc.month[5:7])
    mean = min(150 + 2.0 * expected, 600) * (1 + 0.15 * np.cos(2 * np.pi * (month - 7) / 12))
    n = int(rng.poisson(mean))
    w = 0.5 * base / base.sum() + (0.5 * asb_now / asb_now.sum() if asb_now.sum() else 0.5 * base / base.sum())
    pt = pts[rng.choice(len(pts), size=n, p=w / w.sum())]
    r = 0.1 * np.sqrt(rng.random(n))
    theta = rng.random(n) * 2 * np.pi
    lat = world.pt_lat[pt] + r * np.sin(theta) / KM_LAT
    lon = world.pt_lon[pt] + r * np.cos(theta) / (KM_LON * np.cos(np.radians(world.pt_lat[pt])))
    category = choose(rng, {k: v[0] for k, v in cat.COUNCIL_REPORTS.items()}, n)
    sub = np.array([cat.COUNCIL_REPORTS[c][1][int(rng.integers(len(cat.COUNCIL_REPORTS[c][1])))] for c in category],
                   dtype=object)
    sub[rng.random(n) < 0.1] = ""
    days = month_days(inc.month)
    day = rng.integers(0, len(days), n)
    hour = rng.choice(24, size=n, p=_HOURS / _HOURS.sum())
    minute, second = rng.integers(0, 60, n), rng.integers(0, 60, n)
    stamp = np.array([f"{days[d].isoformat()} {h:02d}:{m:02d}:{s:02d}" for d, h, m, s in
                      zip(day, hour, minute, second, strict=True)], dtype=object)
    order = np.argsort(stamp.astype(str), kind="stable")
    prefix = case_prefix(la)
    yymm = f"{days[0].year % 100:02d}{days[0].month:02d}"
    refs = np.empty(n, dtype=object)
    refs[order] = [f"{prefix}-{yymm}{i + 1:04d}" for i in range(n)]
    letter = "W" if world.force.welsh else "E"
    area = world.pt_area[pt]
    ward = np.array([f"{letter}05{world.index * 20000 + a:06d}" for a in area], dtype=object)
    ward[rng.random(n) < 0.05] = ""
    columns = {
        "Case Reference": refs, "Local Authority": np.full(n, la.name, dtype=object),
        "Local Authority Code": np.full(n, la.code, dtype=object), "Date Reported": stamp,
        "Report Category": category, "Report Subcategory": sub,
        "Latitude": np.array([f"{x:.6f}" for x in lat], dtype=object),
        "Longitude": np.array([f"{x:.6f}" for x in lon], dtype=object), "Ward Code": ward,
        "Status": choose(rng, {"Closed": 0.62, "Open": 0.26, "Referred": 0.12}, n),
    }
    return {k: v[order] for k, v in columns.items()}


def social_care_rows(world: World, la: LocalAuthority, quarter: str,
                     rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The quarter's indicator rows for the authority's areas, and the true counts behind any 'c'."""
    areas = la_areas(world, la)
    pop = world.areas["population"].to_numpy(float)[areas]
    z = world.area_z[areas]
    codes, names, indicators, counts = [], [], [], []
    for ind, rate in cat.SOCIAL_CARE_RATES.items():
        # Children's social care demand rises steeply with deprivation; a quarter-level wobble keeps rows from
        # being a fixed multiple of population.
        mean = pop / 1000 * rate * np.exp(0.6 * z - 0.18) * rng.gamma(20, 1 / 20, len(areas))
        counts.append(rng.poisson(mean))
        codes.append(world.lsoa_code[areas])
        names.append(world.lsoa_name[areas])
        indicators.append(np.full(len(areas), ind, dtype=object))
    code, name, ind, count = (np.concatenate(x) for x in (codes, names, indicators, counts))
    published = count.astype(str).astype(object)
    published[(count >= 1) & (count <= 4)] = "c"
    order = np.lexsort((ind.astype(str), code.astype(str)))
    n = len(code)
    columns = {
        "LSOA code": code, "LSOA name": name, "Local authority code": np.full(n, la.code, dtype=object),
        "Quarter": np.full(n, quarter, dtype=object), "Indicator": ind, "Count": published,
    }
    return {k: v[order] for k, v in columns.items()}, count[order]
