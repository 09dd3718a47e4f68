"""Force record-management exports: the same crimes as the force's street file, as the force's own system holds them.

An RMS row and the street row that publishes the same crime share the month and the category, and the RMS location
lies within about 150 m of the published map point (the street file snaps it, the RMS keeps it exact). Nothing else
links them: the police.uk Crime ID is never in an RMS file, which is what the deduplication step has to cope with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from pyproj import Transformer

from crimelake.simulate import catalogue as cat
from crimelake.simulate.areas import town_distances
from crimelake.simulate.dynamics import Incidents
from crimelake.simulate.places import ward_names
from crimelake.simulate.police_uk import choose, month_days
from crimelake.simulate.world import World
from data_contracts.loader import default_contracts

HO_FORCES = ("bedfordshire", "north-wales")
TEXT_FORCES = ("cambridgeshire", "cheshire")
REF_CODES = {"bedfordshire": "BD", "north-wales": "NW", "cambridgeshire": "CB", "cheshire": "CH"}
KNIFE_SHARE = {"robbery": 0.30, "violent-crime": 0.08, "possession-of-weapons": 0.90}

HO_WEIGHTS = {"105A": 0.30, "008N": 0.22, "008L": 0.15, "008Q": 0.08, "005A": 0.03, "020": 0.05, "019C": 0.03,
              "017A": 0.01, "001": 0.001, "004/1": 0.001, "034B": 0.9, "034A": 0.1, "028E": 0.7, "030C": 0.3,
              "045": 0.55, "048": 0.3, "126": 0.15, "049": 0.8, "040": 0.2, "058A": 0.3, "058C": 0.35, "058E": 0.28,
              "056B": 0.07, "092D": 0.55, "092E": 0.2, "092A": 0.25, "010D": 0.6, "010C": 0.4, "009A": 0.9,
              "062A": 0.1, "066": 0.6, "802": 0.4}
HO_DESCRIPTIONS = {
    "001": "Murder", "004/1": "Manslaughter", "005A": "Assault with intent to cause serious harm",
    "008N": "Assault with injury", "105A": "Assault without injury", "008L": "Harassment", "008Q": "Stalking",
    "017A": "Sexual assault on a male aged 13 and over", "019C": "Rape of a female aged 16 and over",
    "020": "Sexual assault on a female aged 13 and over", "034A": "Robbery of business property",
    "034B": "Robbery of personal property", "028E": "Burglary – residential, home",
    "030C": "Burglary – business and community", "039": "Theft from the person",
    "044": "Theft or unauthorised taking of a pedal cycle", "045": "Theft from a vehicle",
    "048": "Theft or unauthorised taking of a motor vehicle", "126": "Interfering with a motor vehicle",
    "046": "Shoplifting", "040": "Theft in a dwelling other than from an automatic machine or meter",
    "049": "Other theft", "058A": "Criminal damage to a dwelling", "058C": "Criminal damage to a vehicle",
    "058E": "Other criminal damage", "056B": "Arson not endangering life", "092A": "Trafficking in controlled drugs",
    "092D": "Possession of cannabis", "092E": "Possession of other controlled drugs",
    "010C": "Possession of other weapons", "010D": "Possession of article with blade or point",
    "009A": "Public fear, alarm or distress", "062A": "Violent disorder",
    "066": "Other offences against the State or public order", "802": "Dangerous driving",
}
TEXT_WEIGHTS = {"Common assault": 0.30, "Assault occasioning actual bodily harm": 0.20, "Harassment": 0.12,
                "Malicious communications": 0.12, "Stalking": 0.06, "Sexual assault": 0.06, "Wounding": 0.04,
                "Rape": 0.03, "Grievous bodily harm with intent": 0.02, "Robbery of personal property": 0.9,
                "Robbery of business property": 0.1, "Burglary dwelling": 0.7, "Burglary non-dwelling": 0.3,
                "Theft from motor vehicle": 0.55, "Theft of motor vehicle": 0.3, "Vehicle interference": 0.15,
                "Theft other": 0.8, "Making off without payment": 0.2, "Criminal damage": 0.92, "Arson": 0.08,
                "Possession of controlled drug": 0.75, "Supply of controlled drug": 0.25,
                "Possession of bladed article": 0.6, "Possession of offensive weapon": 0.4,
                "Section 4 public order": 0.3, "Section 5 public order": 0.5, "Affray": 0.2}
SUBGROUPS = {
    "Common assault": "Violence without injury", "Assault occasioning actual bodily harm": "Violence with injury",
    "Wounding": "Violence with injury", "Grievous bodily harm with intent": "Violence with injury",
    "Harassment": "Stalking and harassment", "Stalking": "Stalking and harassment",
    "Malicious communications": "Stalking and harassment", "Sexual assault": "Sexual offences", "Rape": "Sexual offences",
    "Burglary dwelling": "Residential burglary", "Burglary non-dwelling": "Non-residential burglary",
}
CATEGORY_SUBGROUP = {"robbery": "Robbery", "theft-from-the-person": "Theft from the person",
                     "bicycle-theft": "Bicycle theft", "vehicle-crime": "Vehicle offences", "shoplifting": "Shoplifting",
                     "other-theft": "All other theft offences", "criminal-damage-arson": "Criminal damage and arson",
                     "drugs": "Drug offences", "possession-of-weapons": "Possession of weapons offences",
                     "public-order": "Public order offences", "other-crime": "Miscellaneous crimes against society"}
STATUS = {"Under investigation": "OPEN", "Status update unavailable": "OPEN", "Awaiting court outcome": "CHARGED",
          "Court result unavailable": "CHARGED", "Investigation complete; no suspect identified": "FILED",
          "Offender given a caution": "FILED", "Local resolution": "FILED"}
# Hour-of-day profiles: night-time economy, daytime trade, and everything else.
_NIGHT = np.array([8, 7, 6, 4, 2, 1, 1, 1, 1.5, 2, 2.5, 3, 3.5, 3.5, 3.5, 4, 4.5, 5, 5.5, 6, 7, 8, 9, 9], float)
_DAY = np.array([0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1, 3, 6, 8, 9, 9, 9, 9, 9, 9, 8, 6, 4, 2, 1, 0.5, 0.3], float)
_ANY = np.array([3, 2, 1.5, 1, 1, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5.5, 6, 6.5, 6.5, 6, 5.5, 5, 4.5, 4], float)
NIGHT_CATS = {"violent-crime", "public-order", "robbery", "possession-of-weapons", "drugs"}
DAY_CATS = {"shoplifting", "other-theft", "theft-from-the-person", "bicycle-theft"}

_TO_BNG = Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)


def to_bng(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e, n = _TO_BNG.transform(lon, lat)
    return np.round(e).astype(int), np.round(n).astype(int)


def _label_table(source: str) -> dict[int, dict[str, float]]:
    """Per category, the contract's labels for it and how often each is used."""
    contract = default_contracts()[(source, "crimes")]
    weights = HO_WEIGHTS if source == "force_rms_ho" else TEXT_WEIGHTS
    table: dict[int, dict[str, float]] = {}
    for label, slug in contract.labels.items():
        table.setdefault(cat.CAT[slug], {})[label] = weights.get(label, 1.0)
    return table


@dataclass
class RmsState:
    """Running reference numbers of one force's system, so that references stay unique across months."""

    force: str
    next_ref: int = 10000
    year_counts: dict[int, int] = field(default_factory=dict)


def _hours(rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    hours = np.empty(len(category), int)
    for profile, cats in ((_NIGHT, NIGHT_CATS), (_DAY, DAY_CATS)):
        sel = np.isin(category, [cat.CAT[c] for c in cats])
        hours[sel] = rng.choice(24, size=int(sel.sum()), p=profile / profile.sum())
    rest = ~np.isin(category, [cat.CAT[c] for c in NIGHT_CATS | DAY_CATS])
    hours[rest] = rng.choice(24, size=int(rest.sum()), p=_ANY / _ANY.sum())
    return hours


def _crimes(inc: Incidents) -> np.ndarray:
    """Positions of the incidents an RMS holds: every crime, no anti-social behaviour."""
    return np.flatnonzero(inc.category != cat.ASB)


def _knife(rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    p = np.zeros(len(category))
    for slug, share in KNIFE_SHARE.items():
        p[category == cat.CAT[slug]] = share
    return rng.random(len(category)) < p


def _world_extras(world: World, rng: np.random.Generator) -> None:
    if world.ward is not None:
        return
    slugs = [world.force.local_authorities[i].slug if i >= 0 else "" for i in _la_index(world)]
    world.ward = ward_names(world.force, world.lsoa_name, slugs, rng)
    world.postcode = _postcodes(world)


def _la_index(world: World) -> np.ndarray:
    codes = [la.code for la in world.force.local_authorities]
    return np.array([codes.index(c) if c in codes else -1 for c in world.areas["local_authority_code"]])


def _postcodes(world: World) -> np.ndarray:
    """Postcode district of each area: its nearest town's, numbered up with distance from the centre."""
    lat = world.areas["centroid_lat"].to_numpy()
    lon = world.areas["centroid_lon"].to_numpy()
    d = town_distances(world.force, lat, lon)
    nearest = d.argmin(axis=1)
    out = []
    for t, dist in zip(nearest, d[np.arange(len(lat)), nearest], strict=True):
        code = world.force.towns[t].postcode or ""
        m = re.fullmatch(r"([A-Z]{1,2})([0-9]{1,2})", code)
        if m:
            code = f"{m.group(1)}{min(int(m.group(2)) + int(dist // 3), 99)}"
        out.append(code)
    return np.array(out, dtype=object)


def _draw_labels(source: str, category: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A source label for every crime, drawn from the labels its contract maps onto the crime's category."""
    out = np.empty(len(category), dtype=object)
    for c, labels in _label_table(source).items():
        rows = category == c
        out[rows] = choose(rng, labels, int(rows.sum()))
    return out


def rms_ho_rows(world: World, inc: Incidents, street_last: np.ndarray, state: RmsState,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    _world_extras(world, rng)
    sel = _crimes(inc)
    n = len(sel)
    category = inc.category[sel]
    code = _draw_labels("force_rms_ho", category, rng)
    days = month_days(inc.month)
    rec = rng.integers(0, len(days), n)
    lag = np.minimum(rng.geometric(0.35, n) - 1, 60)
    rec_text = np.array([days[i].strftime("%d/%m/%Y") for i in rec], dtype=object)
    committed = np.array([(days[i] - timedelta(days=int(k))).strftime("%d/%m/%Y") for i, k in zip(rec, lag, strict=True)], dtype=object)
    committed[rng.random(n) < 0.08] = ""
    east, north = to_bng(inc.lon[sel], inc.lat[sel])
    area = world.pt_area[inc.point[sel]]
    prefix = REF_CODES.get(state.force, state.force[:2].upper())
    yy = days[0].year % 100
    refs = np.array([f"{prefix}/{state.next_ref + i:07d}/{yy:02d}" for i in range(n)], dtype=object)
    state.next_ref += n
    status = np.array([STATUS.get(x, "NFA") for x in street_last[sel]], dtype=object)
    status[rng.random(n) < 0.05] = ""
    order = np.argsort(rec, kind="stable")
    columns = {
        "CRIME_REF": refs, "REC_DATE": rec_text, "COMMITTED_DATE": committed, "HO_CODE": code,
        "OFFENCE_DESC": np.array([HO_DESCRIPTIONS.get(c, "") for c in code], dtype=object),
        "EASTING": east.astype(str).astype(object), "NORTHING": north.astype(str).astype(object),
        "BEAT": np.array([f"{prefix}{a % 48 + 1:02d}" for a in area], dtype=object), "WARD_NAME": world.ward[area],
        "KNIFE_FLAG": np.where(_knife(rng, category), "Y", "N").astype(object), "STATUS": status,
    }
    return {k: v[order] for k, v in columns.items()}


def rms_text_rows(world: World, inc: Incidents, street_last: np.ndarray, state: RmsState,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    _world_extras(world, rng)
    sel = _crimes(inc)
    n = len(sel)
    category = inc.category[sel]
    offence = _draw_labels("force_rms_text", category, rng)
    subgroup = np.array([SUBGROUPS.get(o) or CATEGORY_SUBGROUP.get(cat.SLUGS[c], "") for o, c in
                         zip(offence, category, strict=True)], dtype=object)
    subgroup[rng.random(n) < 0.05] = ""
    days = month_days(inc.month)
    day = rng.integers(0, len(days), n)
    hour = _hours(rng, category)
    minute = rng.integers(0, 60, n)
    second = np.where(rng.random(n) < 0.7, 0, rng.integers(0, 60, n))
    stamp = np.array([f"{days[d].isoformat()}T{h:02d}:{m:02d}:{s:02d}" for d, h, m, s in
                      zip(day, hour, minute, second, strict=True)], dtype=object)
    year = days[0].year
    start = state.year_counts.get(year, 0)
    state.year_counts[year] = start + n
    prefix = REF_CODES.get(state.force, state.force[:2].upper())
    order = np.argsort(stamp.astype(str), kind="stable")
    numbers = np.empty(n, dtype=object)
    numbers[order] = [f"{year % 100:02d}{prefix}{start + i + 1:06d}" for i in range(n)]
    area = world.pt_area[inc.point[sel]]
    violent = category == cat.CAT["violent-crime"]
    domestic = np.where(rng.random(n) < np.where(violent, 0.35, 0.05), "true", "false").astype(object)
    domestic[rng.random(n) < 0.03] = ""
    columns = {
        "incident_number": numbers, "reported_at": stamp, "offence": offence, "offence_subgroup": subgroup,
        "lon": np.array([f"{x:.6f}" for x in inc.lon[sel]], dtype=object),
        "lat": np.array([f"{x:.6f}" for x in inc.lat[sel]], dtype=object),
        "postcode_district": world.postcode[area],
        "knife_or_sharp_instrument": np.where(_knife(rng, category), "true", "false").astype(object),
        "domestic_abuse_flag": domestic,
    }
    return {k: v[order] for k, v in columns.items()}
