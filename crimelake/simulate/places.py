"""Names for anonymous map points ("On or near ...") and for wards, in the style data.police.uk and forces use."""

from __future__ import annotations

import numpy as np

from crimelake.reference.forces import Force
from crimelake.simulate import catalogue as cat

KIND_NAMES = ("street", "shop", "night", "parking", "poi")
# Ward names on Anglesey (Ynys Môn) are Welsh; the circumflex is a real test of an export's encoding.
ANGLESEY_WARDS = ["Caergybi", "Canolbarth Môn", "Aethwy", "Seiriol", "Talybolion", "Twrcelyn", "Lligwy",
                  "Bro Aberffraw", "Bro Rhosyr", "Ynys Gybi", "Llifon"]
WARD_SUFFIX = ["Central", "North", "South", "East", "West", "Park", "Castle", "Abbey", "Riverside", "Priory",
               "Kingsway", "Brickhill", "Harpur", "Queens Park", "Newnham", "Oakley", "Eastcotts", "Goldington"]


def place_base(force: Force, town_name: str) -> str:
    """The place name an area is named after: the town, or for the railway police the city of a station hub."""
    return town_name.split(" ")[0] if force.slug == "btp" else town_name


def point_names(force: Force, kind: np.ndarray, town: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The street or landmark each map point is published as, without the 'On or near ' prefix."""
    n = len(kind)
    if force.slug == "btp":
        # Stations: the hub itself, or another station of the same city.
        hubs = [t.name for t in force.towns]
        cities = [place_base(force, t.name) for t in force.towns]
        suffix = rng.integers(0, len(cat.STATION_SUFFIX), n)
        own = rng.random(n) < 0.4
        london = np.array([c == "London" or abs(t.lat - 51.51) < 0.1 and abs(t.lon + 0.12) < 0.15
                           for c, t in zip(cities, force.towns, strict=True)])
        lu = london[town] & (rng.random(n) < 0.5)
        return np.array([f"{hubs[t] if o else cities[t] + cat.STATION_SUFFIX[s]} ({'Lu Station' if u else 'Station'})"
                         for t, s, o, u in zip(town, suffix, own, lu, strict=True)], dtype=object)
    first = rng.integers(0, len(cat.STREET_FIRST), n)
    last = rng.integers(0, len(cat.STREET_LAST), n)
    names = np.array([f"{cat.STREET_FIRST[a]} {cat.STREET_LAST[b]}" for a, b in zip(first, last, strict=True)],
                     dtype=object)
    if force.welsh:
        welsh = rng.random(n) < 0.25
        names[welsh] = np.array(cat.WELSH_STREETS, dtype=object)[rng.integers(0, len(cat.WELSH_STREETS), welsh.sum())]
    for k, label in enumerate(KIND_NAMES):
        if label == "street":
            continue
        pick = (kind == k) & (rng.random(n) < 0.7)
        options = np.array(cat.PLACE_NAMES[label], dtype=object)
        names[pick] = options[rng.integers(0, len(options), pick.sum())]
    # Some published points carry no street name at all ("On or near ").
    names[rng.random(n) < 0.04] = ""
    return names


def ward_names(force: Force, lsoa_names: np.ndarray, la_slugs: list[str], rng: np.random.Generator) -> np.ndarray:
    """A ward name per area: the area's base name and a local suffix, or a Welsh ward on Anglesey."""
    out = []
    for name, la in zip(lsoa_names, la_slugs, strict=True):
        base = name.rsplit(" ", 1)[0]
        if la == "isle-of-anglesey":
            out.append(ANGLESEY_WARDS[int(rng.integers(len(ANGLESEY_WARDS)))])
        else:
            out.append(f"{base} {WARD_SUFFIX[int(rng.integers(len(WARD_SUFFIX)))]}")
    return np.array(out, dtype=object)
