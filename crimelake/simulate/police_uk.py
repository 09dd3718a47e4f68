"""data.police.uk files: street-level crime, outcomes and stop and search, as the archive publishes them.

Rows follow the real files: 64-hex Crime IDs (none for anti-social behaviour, nor for anything British Transport
Police publishes), locations snapped to the force's map points with six decimals, "On or near <street>", about 1.7%
of rows with no location ("No Location", no LSOA) and a further share located but without an LSOA, rows ordered by
LSOA name as in the archive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from crimelake.simulate import catalogue as cat
from crimelake.simulate.dynamics import Incidents
from crimelake.simulate.world import World

NO_COORDS = 0.017
NO_LSOA_WITH_COORDS = 0.037  # calibration: 5.4% of rows lack an LSOA code, 1.7% because they lack a location
OUTCOME_LAG = np.array([0.45, 0.25, 0.13, 0.07, 0.04, 0.03, 0.02, 0.01])  # months from crime to outcome record


def choose(rng: np.random.Generator, shares: dict[str, float], n: int) -> np.ndarray:
    keys = np.array(list(shares), dtype=object)
    p = np.array(list(shares.values()), float)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


def choose_by(rng: np.random.Generator, group: np.ndarray, tables: dict[str, dict[str, float]]) -> np.ndarray:
    """For each row, a value drawn from the shares of its group."""
    out = np.full(len(group), "", dtype=object)
    for g, shares in tables.items():
        sel = group == g
        if sel.any():
            out[sel] = choose(rng, shares, int(sel.sum()))
    return out


@dataclass
class StreetMonth:
    """A force-month of street rows, aligned with the incidents they publish."""

    columns: dict[str, np.ndarray]
    order: np.ndarray  # file row order (by LSOA name), as positions into the incidents
    crime_id: np.ndarray
    last_outcome: np.ndarray


def street_rows(world: World, inc: Incidents, rng: np.random.Generator) -> StreetMonth:
    n = len(inc)
    pt = inc.point
    area = world.pt_area[pt]
    has_id = (inc.category != cat.ASB) & world.force.is_territorial
    raw = rng.bytes(32 * n).hex()
    crime_id = np.array([raw[i * 64:(i + 1) * 64] for i in range(n)], dtype=object)
    crime_id[~has_id] = ""
    last = np.full(n, "", dtype=object)
    last[has_id] = choose(rng, cat.LAST_OUTCOMES, int(has_id.sum()))
    no_coords = rng.random(n) < NO_COORDS
    no_lsoa = no_coords | (rng.random(n) < NO_LSOA_WITH_COORDS)
    lon = world.pt_lon_text[pt].copy()
    lat = world.pt_lat_text[pt].copy()
    loc = world.pt_location[pt].copy()
    lon[no_coords] = ""
    lat[no_coords] = ""
    loc[no_coords] = "No Location"
    code = world.lsoa_code[area].copy()
    name = world.lsoa_name[area].copy()
    code[no_lsoa] = ""
    name[no_lsoa] = ""
    # The archive lists rows by LSOA name, unlocated rows last; within an LSOA the order carries no meaning.
    shuffle = rng.permutation(n)
    key = np.where(name[shuffle] == "", "\uffff", name[shuffle]).astype(str)
    order = shuffle[np.argsort(key, kind="stable")]
    force_name = world.force.name
    columns = {
        "Crime ID": crime_id, "Month": np.full(n, inc.month, dtype=object),
        "Reported by": np.full(n, force_name, dtype=object), "Falls within": np.full(n, force_name, dtype=object),
        "Longitude": lon, "Latitude": lat, "Location": loc, "LSOA code": code, "LSOA name": name,
        "Crime type": np.array(cat.CRIME_TYPES, dtype=object)[inc.category], "Last outcome category": last,
        "Context": np.full(n, "", dtype=object),
    }
    return StreetMonth({k: v[order] for k, v in columns.items()}, order, crime_id, last)


@dataclass
class OutcomeBook:
    """Outcomes waiting for the month they are recorded in; filled as street months are simulated."""

    months: int
    pending: dict[int, list[dict[str, np.ndarray]]] = field(default_factory=dict)

    def add(self, t: int, street: StreetMonth, rng: np.random.Generator) -> None:
        cols = street.columns
        last = cols["Last outcome category"]
        outcome = np.array([cat.OUTCOME_ROW.get(x) or "" for x in last], dtype=object)
        keep = outcome != ""
        lag = rng.choice(len(OUTCOME_LAG), size=len(last), p=OUTCOME_LAG / OUTCOME_LAG.sum())
        due = t + lag
        for m in np.unique(due[keep]):
            if m >= self.months:
                continue
            sel = keep & (due == m)
            rows = {h: cols[h][sel] for h in ("Crime ID", "Reported by", "Falls within", "Longitude", "Latitude",
                                              "Location", "LSOA code", "LSOA name")}
            rows["Outcome type"] = outcome[sel]
            self.pending.setdefault(int(m), []).append(rows)

    def rows(self, t: int, month: str) -> dict[str, np.ndarray]:
        parts = self.pending.pop(t, [])
        header = ("Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location", "LSOA code",
                  "LSOA name", "Outcome type")
        if not parts:
            return {h: np.array([], dtype=object) for h in header}
        merged = {h: np.concatenate([p[h] for p in parts]) for h in parts[0]}
        n = len(merged["Crime ID"])
        merged["Month"] = np.full(n, month, dtype=object)
        return {h: merged[h] for h in header}


def _bst(d: date) -> tuple[date, date]:
    def last_sunday(month: int) -> date:
        x = date(d.year, month, 31)
        return x - timedelta(days=(x.weekday() + 1) % 7)

    return last_sunday(3), last_sunday(10)


def uk_offsets(days: list[date], hours: np.ndarray) -> np.ndarray:
    """'+01:00' where the UK wall-clock time is in British Summer Time, else '+00:00'."""
    out = []
    for d, h in zip(days, hours.tolist(), strict=True):
        start, end = _bst(d)
        summer = start < d < end or (d == start and h >= 2) or (d == end and h < 1)
        out.append("+01:00" if summer else "+00:00")
    return np.array(out, dtype=object)


def month_days(month: str) -> list[date]:
    y, m = map(int, month.split("-"))
    first = date(y, m, 1)
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return [first + timedelta(days=i) for i in range((nxt - first).days)]


def stop_search_rows(world: World, month: str, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    # Searches follow drugs, weapons and violence, not the whole of crime.
    w = world.base[:, [cat.CAT["drugs"], cat.CAT["possession-of-weapons"], cat.CAT["violent-crime"], cat.CAT["robbery"]]]
    w = w @ np.array([0.5, 0.25, 0.15, 0.1])
    pt = rng.choice(world.n_points, size=n, p=w / w.sum())
    lat = world.pt_lat_text[pt].copy()
    lon = world.pt_lon_text[pt].copy()
    missing = rng.random(n) < 0.07
    lat[missing] = ""
    lon[missing] = ""
    days = month_days(month)
    day = [days[i] for i in rng.integers(0, len(days), n)]
    hour = rng.choice(24, size=n, p=_HOURS)
    minute = rng.integers(0, 60, n)
    midnight = rng.random(n) < 0.2  # many forces record the date only
    hour[midnight] = 0
    minute[midnight] = 0
    for i, d in enumerate(day):  # the hour the clocks skip does not exist on UK wall clocks
        if hour[i] == 1 and d == _bst(d)[0]:
            hour[i] = 2
    offset = uk_offsets(day, hour)
    stamp = np.array([f"{d.isoformat()}T{h:02d}:{m:02d}:00{o}" for d, h, m, o in zip(day, hour, minute, offset, strict=True)],
                     dtype=object)
    kind = choose(rng, cat.SS_TYPE, n)
    officer = choose(rng, cat.SS_OFFICER_ETHNICITY, n)
    self_defined = choose_by(rng, officer, cat.SS_SELF_ETHNICITY)
    gender = choose(rng, cat.SS_GENDER, n)
    age = choose(rng, cat.SS_AGE, n)
    vehicle_only = kind == "Vehicle search"
    for col in (gender, age, self_defined, officer):
        col[vehicle_only] = ""
    legislation = choose(rng, {k: v[0] for k, v in cat.SS_LEGISLATION.items()}, n)
    obj = choose_by(rng, legislation, {k: v[1] for k, v in cat.SS_LEGISLATION.items()})
    outcome = choose(rng, cat.SS_OUTCOME, n)
    found = np.isin(outcome, ["Arrest", "Community resolution", "Summons / charged by post", "Khat or Cannabis warning",
                              "Caution (simple or conditional)", "Penalty Notice for Disorder"])
    linked = np.where(found, np.where(rng.random(n) < 0.65, "True", "False"),
                      np.where(rng.random(n) < 0.6, "", "False")).astype(object)
    operation = choose(rng, {"": 0.905, "False": 0.073, "True": 0.022}, n)
    removal = choose(rng, {"False": 0.972, "True": 0.018, "": 0.010}, n)
    order = np.argsort(stamp.astype(str), kind="stable")
    columns = {
        "Type": kind, "Date": stamp, "Part of a policing operation": operation,
        "Policing operation": np.full(n, "", dtype=object), "Latitude": lat, "Longitude": lon, "Gender": gender,
        "Age range": age, "Self-defined ethnicity": self_defined, "Officer-defined ethnicity": officer,
        "Legislation": legislation, "Object of search": obj, "Outcome": outcome,
        "Outcome linked to object of search": linked, "Removal of more than just outer clothing": removal,
    }
    return {k: v[order] for k, v in columns.items()}


_HOURS = np.array([3, 2, 2, 1.5, 1, 1, 1, 1.5, 2, 3, 3.5, 4, 4, 4.5, 5, 5.5, 6, 6, 6, 6, 6, 5.5, 5, 4])
_HOURS = _HOURS / _HOURS.sum()
