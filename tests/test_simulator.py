"""The data simulator: file shapes, determinism, calibration targets, the RMS link and planted defects."""

from __future__ import annotations

import csv
import re
from datetime import datetime
from pathlib import Path

import h3
import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer
from scipy.spatial import cKDTree

from crimelake.reference.forces import ENGLAND_WALES_BBOX, FORCES, force_by_slug
from crimelake.simulate import DEMO_FORCES, Gap, areas, force_volumes, generate
from crimelake.simulate.catalogue import CRIME_TYPES, NATIONAL_MIX, SLUGS
from crimelake.simulate.defects import FILE_KINDS, ROW_KINDS, applicable
from data_contracts.loader import default_contracts

CONTRACTS = default_contracts()
TERRITORIAL_DEMO = [f for f in DEMO_FORCES if f not in ("btp", "city-of-london")]
BNG_TO_WGS84 = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The full demo preset (6 forces, 24 months), clean."""
    landing = tmp_path_factory.mktemp("demo") / "landing"
    calls = []
    summary = generate(landing, defect_rate=0, progress=lambda *a: calls.append(a))
    return landing, summary, calls


@pytest.fixture(scope="module")
def defective(tmp_path_factory):
    landing = tmp_path_factory.mktemp("defective") / "landing"
    return landing, generate(landing, seed=5, months=4, defect_rate=0.01)


@pytest.fixture(scope="module")
def street(demo):
    landing, _, _ = demo
    frames = []
    for path in sorted(landing.glob("police_uk/*/*-street.csv")):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        df["force"] = path.name[8:-len("-street.csv")]
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    located = df["Longitude"] != ""
    cache: dict[tuple[str, str], str] = {}
    df["cell"] = [cache.setdefault((la, lo), h3.latlng_to_cell(float(la), float(lo), 9)) if ok else ""
                  for la, lo, ok in zip(df["Latitude"], df["Longitude"], located, strict=True)]
    return df


def contract_for(path: Path):
    return next(c for c in CONTRACTS.values() if c.source == path.parts[-3] and c.filename_pattern.match(path.name))


def data_files(landing: Path) -> list[Path]:
    return sorted(p for p in landing.glob("*/*/*.csv") if p.parts[-3] != "reference")


# --- reference facts -----------------------------------------------------------------------------------------------

def test_forces_reference():
    slugs = [f.slug for f in FORCES]
    assert len(FORCES) == 44 and len(set(slugs)) == 44
    for slug in ("avon-and-somerset", "btp", "city-of-london", "metropolitan", "dyfed-powys", "north-wales"):
        assert force_by_slug(slug).slug == slug
    assert force_by_slug("metropolitan").name == "Metropolitan Police Service"
    assert force_by_slug("btp").name == "British Transport Police"
    with pytest.raises(KeyError, match="unknown police force slug 'northern-ireland'"):
        force_by_slug("northern-ireland")
    lo, la, hi_lo, hi_la = ENGLAND_WALES_BBOX
    codes = [a.code for f in FORCES for a in f.local_authorities]
    assert len(codes) == len(set(codes))
    assert force_by_slug("bedfordshire").local_authorities[0].code == "E06000055"
    for f in FORCES:
        assert all(re.fullmatch(r"[EW]0[6-9]\d{6}", a.code) for a in f.local_authorities)
        assert all(a.code.startswith("W") == f.welsh for a in f.local_authorities)
        bx = f.bbox
        assert lo <= bx[0] < bx[2] <= hi_lo and la <= bx[1] < bx[3] <= hi_la
        assert all(bx[0] <= t.lon <= bx[2] and bx[1] <= t.lat <= bx[3] for t in f.towns), f.slug


def test_preset_volumes_follow_the_calibration():
    national = force_volumes("national")
    assert len(national) == 44
    assert 450_000 <= sum(national.values()) <= 550_000
    assert 7_800 <= np.median(list(national.values())) <= 8_800
    assert national["city-of-london"] < 800 and national["metropolitan"] > 4 * national["kent"]
    demo = force_volumes("demo")
    assert set(demo) == set(DEMO_FORCES)
    assert 1_300 <= np.mean([v for k, v in demo.items() if k != "city-of-london"]) <= 1_700
    assert demo["city-of-london"] < 300


# --- files as delivered --------------------------------------------------------------------------------------------

def test_same_seed_same_bytes_and_forces_do_not_disturb_each_other(tmp_path):
    kw = dict(forces=["city-of-london", "bedfordshire"], months=2, defect_rate=0.01)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, seed=3, **kw)
    generate(b, seed=3, **kw)
    generate(c, seed=4, **kw)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.csv"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*.csv"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)
    street = Path("police_uk/2024-01/2024-01-bedfordshire-street.csv")
    assert (a / street).read_bytes() != (c / street).read_bytes()
    # A force's files do not depend on which other forces are in the run.
    alone, both = tmp_path / "alone", tmp_path / "both"
    generate(alone, seed=3, forces=["city-of-london"], months=2, defect_rate=0)
    generate(both, seed=3, forces=["city-of-london", "cheshire"], months=2, defect_rate=0)
    for p in alone.glob("police_uk/*/*.csv"):
        assert p.read_bytes() == (both / p.relative_to(alone)).read_bytes()


def test_names_folders_headers_and_line_endings(defective):
    landing, summary = defective
    files = data_files(landing)
    assert {p.parts[-3] for p in files} == {"police_uk", "force_rms_ho", "force_rms_text", "la_reports", "social_care"}
    for path in files:
        contract = contract_for(path)
        m = contract.filename_pattern.match(path.name)
        month = m.groupdict().get("month")
        if month is None:  # quarterly files land in the folder of the quarter's first month
            year, q = m.group("quarter").split("-Q")
            month = f"{year}-{(int(q) - 1) * 3 + 1:02d}"
        assert path.parent.name == month
        data = path.read_bytes()
        head = data.split(b"\n", 1)[0].decode(contract.encoding).rstrip("\r")
        assert next(csv.reader([head], delimiter=contract.delimiter)) == contract.header
        crlf = contract.source in ("police_uk", "force_rms_ho")
        lines = data.split(b"\n")[:-1]
        assert all(ln.endswith(b"\r") == crlf for ln in lines), path
    assert sorted(summary.files) == sorted(landing.rglob("*.csv"))


def test_rms_ho_export_is_windows_1252(demo):
    landing, _, _ = demo
    files = sorted(landing.glob("force_rms_ho/*/*.csv"))
    assert {p.name.split("-rms-")[0] for p in files} == {"bedfordshire", "north-wales"}
    text = "".join(p.read_bytes().decode("cp1252") for p in files)
    assert "–" in text and "Môn" in text
    with pytest.raises(UnicodeDecodeError):
        files[0].read_bytes().decode("utf-8")


def test_street_files_look_like_the_archive(street):
    assert (street["Longitude"] == "").mean() == pytest.approx(0.017, abs=0.004)
    assert (street["LSOA code"] == "").mean() == pytest.approx(0.054, abs=0.008)
    unlocated = street[street["Longitude"] == ""]
    assert (unlocated["Location"] == "No Location").all() and (unlocated["LSOA code"] == "").all()
    located = street[street["Longitude"] != ""]
    assert located["Location"].str.startswith("On or near ").all()
    assert located["Longitude"].str.fullmatch(r"-?\d+\.\d{6}").all()
    crimes = street["Crime ID"] != ""
    assert street.loc[crimes, "Crime ID"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert not street.loc[crimes, "Crime ID"].duplicated().any()
    asb = street["Crime type"] == "Anti-social behaviour"
    assert not (crimes & asb).any()
    assert not crimes[street["force"] == "btp"].any()  # BTP publishes no Crime IDs
    # Locations are snapped to a fixed set of map points: ~191 distinct points per 1,000 rows over 11 months.
    for force, g in located.groupby("force"):
        first = g[g["Month"] <= "2024-11"]
        per_1000 = 1000 * first[["Longitude", "Latitude"]].drop_duplicates().shape[0] / len(first)
        assert 150 <= per_1000 <= 240, (force, per_1000)


# --- calibration -------------------------------------------------------------------------------------------------

def _cell_month(g: pd.DataFrame) -> pd.DataFrame:
    months = sorted(g["Month"].unique())
    return pd.crosstab(g["cell"], g["Month"]).reindex(columns=months, fill_value=0)


@pytest.mark.parametrize("force", DEMO_FORCES)
def test_crime_concentration(street, force):
    tab = _cell_month(street[(street["force"] == force) & (street["cell"] != "")])
    totals = np.sort(tab.sum(axis=1).to_numpy())[::-1]
    n = len(totals)
    top1 = totals[: max(1, round(0.01 * n))].sum() / totals.sum()
    top5 = totals[: max(1, round(0.05 * n))].sum() / totals.sum()
    assert 0.10 <= top1 <= 0.25, top1
    assert 0.30 <= top5 <= 0.50, top5


@pytest.mark.parametrize("force", DEMO_FORCES)
def test_month_to_month_persistence(street, force):
    tab = np.log1p(_cell_month(street[(street["force"] == force) & (street["cell"] != "")]).to_numpy())
    corr = np.mean([np.corrcoef(tab[:, i], tab[:, i + 1])[0, 1] for i in range(tab.shape[1] - 1)])
    assert 0.58 <= corr <= 0.80, corr


def test_forecasting_is_neither_trivial_nor_hopeless(street):
    """PEI* at 5% of an exponentially weighted recent-count forecast, all crime but ASB (real: about 0.88)."""
    scores = []
    for force in TERRITORIAL_DEMO:
        g = street[(street["force"] == force) & (street["cell"] != "")]
        counts = _cell_month(g[g["Crime type"] != "Anti-social behaviour"]).to_numpy().T.astype(float)
        k = max(1, round(0.05 * counts.shape[1]))
        forecast = counts[0].copy()
        for t in range(1, len(counts)):
            if t >= len(counts) - 12:
                flagged = np.argsort(-forecast, kind="stable")[:k]
                scores.append(counts[t, flagged].sum() / np.sort(counts[t])[::-1][:k].sum())
            forecast = 0.5 * counts[t] + 0.5 * forecast
    assert 0.78 <= np.mean(scores) <= 0.93, np.mean(scores)


def test_category_mix_matches_calibration(street, tmp_path):
    terr = street[street["force"].isin(TERRITORIAL_DEMO)]
    mix = terr["Crime type"].value_counts(normalize=True).reindex(CRIME_TYPES, fill_value=0).to_numpy()
    assert np.abs(mix - NATIONAL_MIX).max() <= 0.03
    # Nationally, with BTP and the City of London in their real proportions, the whole mix matches too.
    generate(tmp_path, scale="national", incidents=400, defect_rate=0)
    national = pd.concat(pd.read_csv(p, usecols=["Crime type"]) for p in tmp_path.glob("police_uk/*/*-street.csv"))
    mix = national["Crime type"].value_counts(normalize=True).reindex(CRIME_TYPES, fill_value=0).to_numpy()
    assert np.abs(mix - NATIONAL_MIX).max() <= 0.03


def test_seasonality(street):
    terr = street[street["force"].isin(TERRITORIAL_DEMO)]
    month = terr["Month"].str[5:].astype(int)
    by = terr.groupby([terr["Crime type"], month]).size()
    summer, winter = [7, 8], [12, 1]
    for crime in ("Anti-social behaviour", "Violence and sexual offences"):
        assert by[crime][summer].sum() > 1.1 * by[crime][winter].sum(), crime
    assert by["Burglary"][winter].sum() > 1.1 * by["Burglary"][summer].sum()


def test_categories_have_their_own_places(street):
    shop_names = ["On or near Supermarket", "On or near Shopping Area", "On or near Petrol Station"]
    for force in TERRITORIAL_DEMO:
        g = street[(street["force"] == force) & (street["cell"] != "")]
        at_shops = g["Location"].isin(shop_names).groupby(g["Crime type"]).mean()
        assert at_shops["Shoplifting"] > 0.3, force
        assert at_shops["Shoplifting"] > 8 * at_shops["Burglary"], force


def test_hotspot_truth_is_visible_in_the_data(demo, street):
    landing, summary, _ = demo
    truth = pd.read_csv(landing / "reference" / "hotspots_truth.csv")
    assert set(truth["force"]) == set(DEMO_FORCES) and truth.to_dict("records") == summary.hotspots
    assert {"emerging", "flare", "fading", "intensifying"} <= set(truth["kind"])
    names = dict(zip(SLUGS, CRIME_TYPES, strict=True))
    months = sorted(street["Month"].unique())
    checked = 0
    for h in truth.itertuples():
        if h.peak_rows_per_month < 10 or not (months[0] < h.start and h.end < months[-1]):
            continue
        ring = set(h3.grid_disk(h.h3_cell, 1))
        cats = [names[c] for c in h.categories.split(";")]
        sel = street[(street["force"] == h.force) & street["cell"].isin(ring) & street["Crime type"].isin(cats)]
        series = sel["Month"].value_counts().reindex(months, fill_value=0)
        active = (series.index > h.start) & (series.index < h.end)
        assert series[active].mean() > 2 * series[~active].mean() + 1, h
        checked += 1
    assert checked >= 3


# --- the other sources ---------------------------------------------------------------------------------------------

def test_outcomes_reference_earlier_or_same_month_crimes(demo, street):
    landing, _, _ = demo
    first_seen = street[street["Crime ID"] != ""].groupby("Crime ID")["Month"].first()
    outcomes = pd.concat(pd.read_csv(p, dtype=str, keep_default_na=False)
                         for p in landing.glob("police_uk/*/*-outcomes.csv"))
    assert len(outcomes) > 0.5 * len(first_seen)
    crime_month = outcomes["Crime ID"].map(first_seen)
    assert crime_month.notna().all() and (crime_month <= outcomes["Month"]).all()
    assert not list(landing.glob("police_uk/*/*-btp-outcomes.csv"))


def test_stop_and_search_values(demo):
    landing, _, _ = demo
    ss = pd.concat(pd.read_csv(p, dtype=str, keep_default_na=False)
                   for p in landing.glob("police_uk/*/*-stop-and-search.csv"))
    contract = CONTRACTS[("police_uk", "stop_and_search")]
    assert set(ss["Type"]) <= set(contract.column("type").enum)
    for col in ("Part of a policing operation", "Outcome linked to object of search",
                "Removal of more than just outer clothing"):
        assert set(ss[col]) <= {"True", "False", ""}
    assert ss["Date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0[01]:00").all()
    assert ss.loc[ss["Date"].str[5:7] == "07", "Date"].str.endswith("+01:00").all()
    assert ss.loc[ss["Date"].str[5:7] == "01", "Date"].str.endswith("+00:00").all()
    drugs = ss["Legislation"] == "Misuse of Drugs Act 1971 (section 23)"
    assert (ss.loc[drugs, "Object of search"] == "Controlled drugs").all() and drugs.mean() > 0.5


def _rms(landing: Path) -> pd.DataFrame:
    frames = []
    for source, label_col in (("force_rms_ho", "HO_CODE"), ("force_rms_text", "offence")):
        contract = CONTRACTS[(source, "crimes")]
        for p in sorted(landing.glob(f"{source}/*/*.csv")):
            df = pd.read_csv(p, dtype=str, keep_default_na=False, encoding=contract.encoding)
            if source == "force_rms_ho":
                lon, lat = BNG_TO_WGS84.transform(df["EASTING"].astype(int).to_numpy(), df["NORTHING"].astype(int).to_numpy())
                knife = df["KNIFE_FLAG"] == "Y"
                assert df["CRIME_REF"].str.fullmatch(contract.column("crime_ref").pattern[1:-1]).all()
            else:
                lon, lat = df["lon"].astype(float).to_numpy(), df["lat"].astype(float).to_numpy()
                knife = df["knife_or_sharp_instrument"] == "true"
                assert df["incident_number"].str.fullmatch(contract.column("incident_number").pattern[1:-1]).all()
            assert not df.apply(lambda s: s.str.fullmatch(r"[0-9a-f]{64}")).any().any()  # no police.uk Crime ID
            frames.append(pd.DataFrame({"force": contract.filename_pattern.match(p.name).group("force"),
                                        "month": p.parent.name, "category": df[label_col].map(contract.labels),
                                        "lon": lon, "lat": lat, "knife": knife.to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def test_rms_exports_describe_the_same_crimes_as_the_street_files(demo, street):
    landing, _, _ = demo
    rms = _rms(landing)
    assert set(rms["force"]) == {"bedfordshire", "north-wales", "cambridgeshire", "cheshire"}
    assert rms["category"].notna().all()
    slug = dict(zip(CRIME_TYPES, SLUGS, strict=True))
    crimes = street[(street["Crime type"] != "Anti-social behaviour") & street["force"].isin(set(rms["force"]))].copy()
    crimes["category"] = crimes["Crime type"].map(slug)
    expected = crimes.groupby(["force", "Month", "category"]).size()
    got = rms.groupby(["force", "month", "category"]).size()
    assert got.to_dict() == expected.to_dict()
    # Each RMS crime lies within 250 m of a published map point of the same force, month and category, except
    # for as many as the street file published without a location.
    unlocated = crimes[crimes["Longitude"] == ""].groupby(["force", "Month", "category"]).size()
    kx = 111.32 * np.cos(np.radians(53))
    unmatched_total = 0
    published = {k: g for k, g in crimes[crimes["Longitude"] != ""].groupby(["force", "Month", "category"])}
    for key, g in rms.groupby(["force", "month", "category"]):
        pts = published.get(key)
        if pts is None:
            unmatched = len(g)
        else:
            tree = cKDTree(np.c_[pts["Longitude"].astype(float) * kx, pts["Latitude"].astype(float) * 110.57])
            dist, _ = tree.query(np.c_[g["lon"] * kx, g["lat"] * 110.57])
            unmatched = int((dist > 0.25).sum())
        assert unmatched <= unlocated.get(key, 0), key
        unmatched_total += unmatched
    assert unmatched_total < 0.02 * len(rms)
    share = rms.groupby("category")["knife"].mean()
    assert share["robbery"] == pytest.approx(0.30, abs=0.08)
    assert share["violent-crime"] == pytest.approx(0.08, abs=0.02)
    assert share["possession-of-weapons"] == pytest.approx(0.90, abs=0.06)
    assert share["burglary"] == 0


def test_council_reports_follow_antisocial_behaviour(demo, street):
    landing, _, _ = demo
    contract = CONTRACTS[("la_reports", "reports")]
    reports = pd.concat(pd.read_csv(p, dtype=str, keep_default_na=False) for p in landing.glob("la_reports/*/cheshire-west*.csv"))
    assert set(reports["Report Category"]) <= set(contract.labels)
    assert reports["Case Reference"].str.fullmatch(r"[A-Z]{2,4}-[0-9]{6,8}").all()
    assert (reports["Local Authority Code"] == "E06000050").all()
    per_month = reports.groupby(reports["Date Reported"].str[:7]).size()
    assert 100 <= per_month.median() <= 600
    cells = [h3.latlng_to_cell(float(a), float(b), 8) for a, b in zip(reports["Latitude"], reports["Longitude"], strict=True)]
    asb = street[(street["force"] == "cheshire") & (street["Crime type"] == "Anti-social behaviour") & (street["cell"] != "")]
    asb_cells = asb["cell"].map(lambda c: h3.cell_to_parent(c, 8)).value_counts()
    rep = pd.Series(cells).value_counts()
    both = asb_cells.to_frame("asb").join(rep.rename("reports"), how="inner")
    assert len(both) > 30 and both["asb"].corr(both["reports"], method="spearman") > 0.4


def test_social_care_is_suppressed_and_follows_deprivation(demo):
    landing, _, _ = demo
    sc = pd.concat(pd.read_csv(p, dtype=str, keep_default_na=False) for p in landing.glob("social_care/*/*.csv"))
    assert (sc["Count"] == "c").mean() > 0.05
    numeric = pd.to_numeric(sc["Count"], errors="coerce")
    assert not numeric.between(1, 4).any()
    assert set(sc["Indicator"]) == set(CONTRACTS[("social_care", "indicators")].column("indicator").enum)
    table = pd.read_csv(landing / "reference" / "areas.csv", dtype={"imd_decile": int, "population": int})
    referrals = sc[(sc["Indicator"] == "children_in_need_referrals") & (sc["Count"] != "c")].copy()
    referrals = referrals.merge(table, left_on="LSOA code", right_on="lsoa_code")
    rate = referrals["Count"].astype(int) / referrals["population"] * 1000
    assert rate[referrals["imd_decile"] <= 3].mean() > 1.3 * rate[referrals["imd_decile"] >= 8].mean()


def test_area_table(demo, street):
    landing, _, _ = demo
    table = pd.read_csv(landing / "reference" / "areas.csv", dtype=str)
    assert list(table.columns) == ["lsoa_code", "lsoa_name", "force", "local_authority_code", "h3_res7", "centroid_lon",
                                   "centroid_lat", "population", "imd_decile"]
    assert table["lsoa_code"].is_unique
    welsh = table["force"] == "north-wales"
    assert table.loc[welsh, "lsoa_code"].str.fullmatch(r"W01\d{6}").all()
    assert table.loc[~welsh, "lsoa_code"].str.fullmatch(r"E01\d{6}").all()
    assert table["lsoa_name"].str.fullmatch(r".+ \d{3}[A-D]").all()
    assert set(table["imd_decile"].astype(int)) == set(range(1, 11))
    again = areas(7, list(DEMO_FORCES)).sort_values("lsoa_code").reset_index(drop=True)
    for c in ("lsoa_code", "lsoa_name", "h3_res7", "population", "imd_decile"):
        assert (again[c].astype(str) == table[c]).all(), c
    # Deprivation goes with crime per head, but is not the same thing.
    per_area = street[street["LSOA code"] != ""].groupby("LSOA code").size()
    t = table.set_index("lsoa_code").loc[per_area.index]
    rate = np.log(per_area / t["population"].astype(float))
    rho = pd.Series(rate.to_numpy()).corr(pd.Series(t["imd_decile"].astype(int).to_numpy()), method="spearman")
    assert -0.9 < rho < -0.15, rho
    assert set(street["LSOA code"]) - {""} <= set(table["lsoa_code"])


def test_progress_is_reported_per_source(demo):
    _, summary, calls = demo
    steps: dict[str, list[int]] = {}
    totals: dict[str, set[int]] = {}
    for stage, done, total in calls:
        steps.setdefault(stage, []).append(done)
        totals.setdefault(stage, set()).add(total)
    assert {"police_uk", "force_rms_ho", "force_rms_text", "la_reports", "social_care"} <= set(steps)
    # One call per file, counting up from 1 to a total that never changes.
    for stage, dones in steps.items():
        assert len(totals[stage]) == 1, stage
        assert dones == list(range(1, totals[stage].pop() + 1)), stage
    assert len(steps["police_uk"]) == sum(1 for p in summary.files if p.parts[-3] == "police_uk")


# --- defects -------------------------------------------------------------------------------------------------------

def _valid_date(value: str, fmt: str, month: str) -> bool:
    try:
        if fmt == "%Y-%m":
            return re.fullmatch(r"\d{4}-\d{2}", value) is not None and value == month
        if fmt == "quarter":
            m = re.fullmatch(r"(\d{4})-Q([1-4])", value)
            return m is not None and f"{m.group(1)}-{(int(m.group(2)) - 1) * 3 + 1:02d}" == month
        parsed = datetime.fromisoformat(value) if fmt == "iso8601" else datetime.strptime(value, fmt)
    except ValueError:
        return False
    return parsed.strftime("%Y-%m") == month


def bad_lines(path: Path) -> set[int]:
    """Lines an independent, contract-driven reader rejects: broken CSV, unmapped labels, bad dates, bad places."""
    contract = contract_for(path)
    month = path.parent.name
    lines = path.read_bytes().decode(contract.encoding).split("\n")
    lines = [ln.rstrip("\r") for ln in (lines[:-1] if lines[-1] == "" else lines)]
    header = contract.header
    col = {c.name: c.header for c in contract.columns}
    bad = set()
    for i, line in enumerate(lines[1:], start=2):
        try:
            fields = next(csv.reader([line], delimiter=contract.delimiter, strict=True))
        except csv.Error:
            bad.add(i)
            continue
        if len(fields) != len(header):
            bad.add(i)
            continue
        row = dict(zip(header, fields, strict=True))
        ok = _valid_date(row[col[contract.month_column]], contract.month_format, month)
        if contract.label_column:
            ok &= row[col[contract.label_column]] in contract.labels
        if contract.x:
            x, y = row[col[contract.x]], row[col[contract.y]]
            if x and y:
                lon, lat = (float(x), float(y)) if contract.crs == "EPSG:4326" else BNG_TO_WGS84.transform(int(x), int(y))
                lo, la, hi_lo, hi_la = ENGLAND_WALES_BBOX
                ok &= lo <= lon <= hi_lo and la <= lat <= hi_la
            else:
                ok &= not (x or y) and not contract.coords_required
        if contract.suppression:
            value = row[col[contract.suppression["column"]]]
            ok &= value == "c" or not (value.isdigit() and 1 <= int(value) <= 4)
        if not ok:
            bad.add(i)
    return bad


def test_clean_run_has_no_defects(demo):
    landing, summary, _ = demo
    assert summary.defects == {} and summary.defect_records == [] and summary.defective_files == {}
    assert not [p for p in landing.rglob("*.csv") if "(1)" in p.name]
    for path in data_files(landing)[::7]:
        assert bad_lines(path) == set(), path
    assert (landing / "reference" / "defects_truth.csv").read_text().strip() == "kind,source,entity,file,line,detail"


def test_every_defect_is_recorded_and_nothing_else_is_wrong(defective):
    landing, summary = defective
    assert set(summary.defects) == set(ROW_KINDS) | set(FILE_KINDS)
    assert sum(summary.defects.values()) == len(summary.defect_records)
    for contract in CONTRACTS.values():
        if contract.source == "interventions":
            continue  # a log is written only by runs long enough to plant interventions, and with no defects
        kinds = {d.kind for d in summary.defect_records if (d.source, d.entity) == contract.key}
        assert set(applicable(contract)) | set(FILE_KINDS) == kinds, contract.key
    expected = summary.bad_lines()
    for path in data_files(landing):
        rel = path.relative_to(landing).as_posix()
        if summary.defective_files.get(rel) == "duplicate_file":
            original = path.with_name(path.name.replace(" (1)", ""))
            assert path.read_bytes() == original.read_bytes()
            assert not expected.get(original.relative_to(landing).as_posix())
            continue
        assert bad_lines(path) == expected.get(rel, set()), rel
        if summary.defective_files.get(rel) == "truncated_file":
            assert not path.read_bytes().endswith(b"\n")
    truth = pd.read_csv(landing / "reference" / "defects_truth.csv")
    assert len(truth) == len(summary.defect_records)


# --- missing and partial force-months ------------------------------------------------------------------------------

GAP_FORCES = ["bedfordshire", "cheshire", "city-of-london"]  # an RMS export of each kind, and the smallest force


def _force_files(landing: Path, force: str, month: str) -> list[Path]:
    """Files of the force's own sources for a month (data.police.uk and its RMS export)."""
    names = {f"{month}-{force}-street.csv", f"{month}-{force}-outcomes.csv", f"{month}-{force}-stop-and-search.csv",
             f"{force}-rms-{month}.csv", f"{force}-incidents-{month}.csv"}
    return [p for p in landing.glob(f"*/{month}/*.csv") if p.name in names]


def _data_rows(path: Path) -> int:
    return path.read_bytes().count(b"\n") - 1


def assert_truth_matches_files(landing: Path, complete: Path) -> pd.DataFrame:
    """`landing` was written with gaps, `complete` with the same seed and arguments without them."""
    truth = pd.read_csv(landing / "reference" / "gaps_truth.csv", dtype={"share": float})
    assert list(truth.columns) == ["force", "month", "kind", "share"]
    assert not truth.duplicated(["force", "month"]).any()
    for g in truth.itertuples():
        full = _force_files(complete, g.force, g.month)
        assert full, (g.force, g.month)
        if g.kind == "missing":
            assert g.share == 0 and _force_files(landing, g.force, g.month) == []
            # Councils still deliver their reports.
            for la in force_by_slug(g.force).local_authorities:
                assert (landing / f"la_reports/{g.month}/{la.slug}-reports-{g.month}.csv").exists()
        else:
            street = Path(f"police_uk/{g.month}/{g.month}-{g.force}-street.csv")
            ratio = _data_rows(landing / street) / _data_rows(complete / street)
            assert 0.30 <= g.share <= 0.45 and abs(ratio - g.share) < 0.01, (g, ratio)
    gap_keys = {(g.force, g.month) for g in truth.itertuples()}
    # Every other street file is exactly what the run without gaps wrote.
    for p in complete.glob("police_uk/*/*-street.csv"):
        if (p.name[8:-len("-street.csv")], p.parent.name) not in gap_keys:
            assert p.read_bytes() == (landing / p.relative_to(complete)).read_bytes(), p
    return truth


@pytest.fixture(scope="module")
def without_gaps(tmp_path_factory):
    landing = tmp_path_factory.mktemp("nogaps") / "landing"
    generate(landing, seed=11, forces=GAP_FORCES, months=6, defect_rate=0)
    return landing


def test_seeded_gaps_match_their_truth_and_repeat_by_seed(tmp_path, without_gaps):
    kw = dict(forces=GAP_FORCES, months=6, defect_rate=0, gaps=2)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    summary = generate(a, seed=11, **kw)
    truth = assert_truth_matches_files(a, without_gaps)
    assert sorted(truth["kind"]) == ["missing", "missing", "partial", "partial"]
    assert "2024-01" not in set(truth["month"]) and "2024-02" not in set(truth["month"])
    assert truth.to_dict("records") == summary.gaps
    generate(b, seed=11, **kw)
    files = sorted(p.relative_to(a) for p in a.rglob("*.csv"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.csv"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    generate(c, seed=12, **kw)
    assert (c / "reference/gaps_truth.csv").read_bytes() != (a / "reference/gaps_truth.csv").read_bytes()


def test_chosen_gaps_drop_every_source_of_the_force_and_thin_its_incidents(tmp_path, without_gaps):
    chosen = [Gap("bedfordshire", "2024-03", "missing"), Gap("cheshire", "2024-05", "missing"),
              Gap("bedfordshire", "2024-05", "partial", 0.35), Gap("city-of-london", "2024-04", "partial", 0.4)]
    landing = tmp_path / "landing"
    summary = generate(landing, seed=11, forces=GAP_FORCES, months=6, defect_rate=0, gaps=chosen)
    truth = assert_truth_matches_files(landing, without_gaps)
    assert len(truth) == 4
    assert not (landing / "force_rms_ho/2024-03/bedfordshire-rms-2024-03.csv").exists()
    assert not (landing / "force_rms_text/2024-05/cheshire-incidents-2024-05.csv").exists()
    assert sorted(summary.files) == sorted(landing.rglob("*.csv"))
    # A partial month's RMS export describes the same reduced set of crimes as its street file.
    rms = Path("force_rms_ho/2024-05/bedfordshire-rms-2024-05.csv")
    ratio = _data_rows(landing / rms) / _data_rows(without_gaps / rms)
    assert 0.3 < ratio < 0.4, ratio
    # Months after a gap are unchanged apart from late outcomes of the thinned or dropped crimes.
    after = Path("police_uk/2024-06/2024-06-cheshire-stop-and-search.csv")
    assert (landing / after).read_bytes() == (without_gaps / after).read_bytes()


@pytest.mark.parametrize(("gaps", "message"), [
    ([Gap("kent", "2024-02", "missing")], "not a force of this run"),
    ([Gap("cheshire", "2023-12", "missing")], "not a month of this run"),
    ([Gap("cheshire", "2024-02", "partial", 1.2)], "strictly between 0 and 1"),
    ([Gap("cheshire", "2024-02", "late")], "kind must be one of"),
    ([Gap("cheshire", "2024-02", "missing"), Gap("cheshire", "2024-02", "partial", 0.4)], "listed twice"),
    (40, "do not fit"),
])
def test_bad_gaps_are_refused(tmp_path, gaps, message):
    with pytest.raises(ValueError, match=message):
        generate(tmp_path, forces=["cheshire", "city-of-london"], months=6, gaps=gaps)


def test_case_reference_prefixes_are_unique_across_all_councils():
    from crimelake.simulate.council import case_prefix

    pattern = re.compile(CONTRACTS[("la_reports", "reports")].column("case_reference").pattern)
    las = [la for f in FORCES for la in f.local_authorities]
    prefixes = [case_prefix(la) for la in las]
    assert len(set(prefixes)) == len(las)  # Cardiff and Carmarthenshire once shared CAR, a duplicate reference
    assert all(pattern.match(f"{p}-2401{1:04d}") for p in prefixes)
    assert case_prefix(force_by_slug("bedfordshire").local_authorities[0]) == "BED"
