"""Fairness audit across IMD deciles on small cases worked out by hand."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from ml.fairness import UNKNOWN, audit, gate, load_imd

# Twenty cells, two per decile: cells 2(d-1) and 2(d-1)+1 lie in LSOA "L<d>" of IMD decile d.
CELLS = np.array([f"c{i:02d}" for i in range(20)])
LSOA = np.array([f"L{i // 2 + 1}" for i in range(20)], dtype=object)
IMD = pd.DataFrame(
    {
        "lsoa_code": [f"L{d}" for d in range(1, 11)],
        "imd_decile": list(range(1, 11)),
        "population": [100.0 * d for d in range(1, 11)],
    }
)
EVEN = np.ones(20)  # one crime in every cell: each decile holds 10% of the crime


def row(a, decile):
    t = a.table
    return t[t["decile"] == decile].iloc[0]


def test_shares_sum_to_one_and_every_decile_is_a_row():
    rng = np.random.default_rng(0)
    pred, obs = rng.gamma(2.0, size=20), rng.poisson(2.0, size=20).astype(float)
    a = audit(CELLS, LSOA, pred, obs, IMD, coverage=0.25)
    assert list(a.table["decile"]) == [*range(1, 11), UNKNOWN]
    for col in ("share_of_flagged", "share_of_crime", "share_of_population"):
        assert a.table[col].sum() == pytest.approx(1.0)
    assert a.table["cells"].sum() == 20
    assert a.table["flagged_cells"].sum() == a.n_flagged == 5


def test_flags_only_in_decile_1_with_even_crime_fail_the_gate_naming_decile_1():
    pred = np.zeros(20)
    pred[[0, 1]] = 5.0  # the two decile-1 cells; coverage 10% of 20 = 2 flags
    a = audit(CELLS, LSOA, pred, EVEN, IMD, coverage=0.1)
    r = row(a, 1)
    assert r["share_of_flagged"] == pytest.approx(1.0)
    assert r["share_of_crime"] == pytest.approx(0.1)
    assert r["flag_to_crime_ratio"] == pytest.approx(10.0)
    assert row(a, 2)["flag_to_crime_ratio"] == pytest.approx(0.0)
    g = gate(a)
    assert not g.passed
    assert g.worst_decile == 1 and g.worst_ratio == pytest.approx(10.0)
    assert len(g.reasons) == 1
    assert g.reasons[0].startswith(
        "decile 1: 100.0% of flagged cells vs 10.0% of next-month crime, ratio 10.00 > 1.50"
    )


def test_flags_that_follow_crime_pass():
    # Half the cells flagged, one per decile, crime even: every decile gets 10% of flags and 10% of crime.
    pred = np.tile([1.0, 0.0], 10)
    a = audit(CELLS, LSOA, pred, EVEN, IMD, coverage=0.5)
    assert np.allclose(a.table["flag_to_crime_ratio"].iloc[:10], 1.0)
    g = gate(a)
    assert g.passed and g.reasons == []
    assert g.worst_ratio == pytest.approx(1.0)
    # Same coverage but flags piled in deciles 1-5 (20% each vs 10% of crime): ratio 2 fails for those five.
    pred = np.r_[np.ones(10), np.zeros(10)]
    g = gate(audit(CELLS, LSOA, pred, EVEN, IMD, coverage=0.5))
    assert not g.passed
    assert [r.split(":")[0] for r in g.reasons] == [f"decile {d}" for d in range(1, 6)]
    # A looser threshold lets it through.
    assert gate(audit(CELLS, LSOA, pred, EVEN, IMD, coverage=0.5), max_ratio=2.5).passed


def test_small_crime_deciles_cannot_hide_over_flagging():
    obs = EVEN.copy()
    obs[[0, 1]] = 0.0  # decile 1 saw no crime: its ratio is undefined
    pred = np.zeros(20)
    pred[[0, 1]] = 5.0
    a = audit(CELLS, LSOA, pred, obs, IMD, coverage=0.1)
    assert math.isnan(row(a, 1)["flag_to_crime_ratio"])
    g = gate(a)
    assert not g.passed
    assert g.reasons[0].startswith("decile 1: 100.0% of flagged cells vs 0.0% of next-month crime")
    assert "floor" in g.reasons[0]


def test_no_crime_fails_the_gate():
    a = audit(CELLS, LSOA, np.arange(20.0), np.zeros(20), IMD, coverage=0.1)
    g = gate(a)
    assert not g.passed and "no observed crime" in g.reasons[0]
    assert math.isnan(g.worst_ratio)


def test_cells_without_a_known_decile_are_counted_as_unknown():
    cells = np.array(["a", "b", "c", "d", "e", "f"])
    # Missing as None, pandas' NA or blank text; a code padded with spaces is the code itself.
    lsoa = np.array(["L1", None, pd.NA, "  ", "E99999999", " L1 "], dtype=object)
    pred = np.array([0.0, 9, 8, 0, 0, 0])
    obs = np.array([1.0, 1, 0, 0, 2, 0])
    a = audit(cells, lsoa, pred, obs, IMD, coverage=0.34)  # 2 flags: cells b and c
    u, d1 = row(a, UNKNOWN), row(a, 1)
    assert u["cells"] == 4 and d1["cells"] == 2
    assert u["flagged_cells"] == 2 and u["share_of_flagged"] == pytest.approx(1.0)
    assert u["share_of_crime"] == pytest.approx(3 / 4)
    assert d1["share_of_crime"] == pytest.approx(1 / 4)
    # Unknown LSOAs carry no population: all of it sits with the known decile.
    assert d1["share_of_population"] == pytest.approx(1.0) and u["share_of_population"] == pytest.approx(0.0)
    # Flags in "unknown" are reported but not gated (not a deprivation group); decile 1 got none.
    assert gate(a).passed
    assert a.table["cells"].sum() == 6


def test_population_is_split_equally_among_the_study_area_cells_of_an_lsoa():
    # LSOA L1 (pop 100) has three cells, L2 (pop 200) one cell: per cell 100/3, 100/3, 100/3, 200.
    cells = np.array(["a", "b", "c", "d"])
    lsoa = np.array(["L1", "L1", "L1", "L2"], dtype=object)
    a = audit(cells, lsoa, np.array([3.0, 2, 1, 0]), np.ones(4), IMD, coverage=0.25)
    assert row(a, 1)["share_of_population"] == pytest.approx(100 / 300)
    assert row(a, 2)["share_of_population"] == pytest.approx(200 / 300)
    # Flagged in decile 1 alone: the single flag = 100% of flags, 75% of crime.
    assert row(a, 1)["flag_to_crime_ratio"] == pytest.approx(1 / 0.75)


def test_within_decile_accuracy_calibration_and_false_alarms():
    # Decile 1 = cells 0, 1; decile 2 = cells 2, 3. Rest of the area: no crime, low prediction.
    pred = np.zeros(20)
    pred[[0, 1, 2, 3]] = [4.0, 1.0, 3.0, 2.0]
    obs = np.zeros(20)
    obs[[0, 1, 2, 3]] = [0.0, 2.0, 3.0, 1.0]
    a = audit(CELLS, LSOA, pred, obs, IMD, coverage=0.1)  # overall flags: cells 0 and 2
    d1, d2 = row(a, 1), row(a, 2)
    # Within decile 1 (coverage 10% of 2 cells -> 1 flag): cell 0, which saw 0 of 2 crimes.
    assert d1["pai"] == pytest.approx(0.0) and d1["pei_star"] == pytest.approx(0.0)
    # Within decile 2: cell 2 has 3 of 4 crimes on half the area -> PAI 1.5; the best cell also had 3 -> PEI* 1.
    assert d2["pai"] == pytest.approx(1.5) and d2["pei_star"] == pytest.approx(1.0)
    assert d1["calibration"] == pytest.approx(5 / 2) and d2["calibration"] == pytest.approx(5 / 4)
    assert d1["false_alarm_rate"] == pytest.approx(1.0) and d2["false_alarm_rate"] == pytest.approx(0.0)
    assert math.isnan(row(a, 3)["false_alarm_rate"])  # nothing flagged there
    assert math.isnan(row(a, 3)["calibration"])  # no crime there


def test_obs_by_kind_adds_share_and_ratio_columns():
    pred = np.zeros(20)
    pred[[0, 1]] = 5.0
    police = np.zeros(20)
    police[[0, 1]] = 4.0  # police-discovered crime all in decile 1
    victim = EVEN.copy()
    a = audit(
        CELLS,
        LSOA,
        pred,
        police + victim,
        IMD,
        coverage=0.1,
        obs_by_kind={"police_discovered": police, "victim_reported": victim},
    )
    assert a.kinds == ["police_discovered", "victim_reported"]
    d1 = row(a, 1)
    assert d1["share_of_crime_police_discovered"] == pytest.approx(1.0)
    assert d1["flag_to_crime_ratio_police_discovered"] == pytest.approx(1.0)
    assert d1["share_of_crime_victim_reported"] == pytest.approx(0.1)
    assert d1["flag_to_crime_ratio_victim_reported"] == pytest.approx(10.0)
    assert math.isnan(row(a, 2)["flag_to_crime_ratio_police_discovered"])
    with pytest.raises(ValueError, match="victim_reported"):
        audit(CELLS, LSOA, pred, EVEN, IMD, obs_by_kind={"victim_reported": np.ones(3)})


def test_markdown_and_dict_outputs():
    pred = np.zeros(20)
    pred[[0, 1]] = 5.0
    a = audit(CELLS, LSOA, pred, EVEN, IMD, coverage=0.1)
    md = a.to_markdown()
    lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(lines) == 2 + 11
    assert lines[0].startswith("| decile | cells | flagged_cells | share_of_flagged")
    assert lines[2].startswith("| 1 | 2 | 2 | 1.000 | 0.100 |")
    assert lines[-1].startswith("| unknown | 0 | 0 | 0.000 | 0.000 |")
    d = json.loads(json.dumps(a.to_dict(), allow_nan=False))
    assert d["n_flagged"] == 2 and len(d["deciles"]) == 11
    assert d["deciles"][0]["flag_to_crime_ratio"] == pytest.approx(10.0)
    assert d["deciles"][-1]["pai"] is None
    assert json.loads(json.dumps(gate(a).to_dict(), allow_nan=False))["passed"] is False


def test_mismatched_inputs_are_rejected():
    with pytest.raises(ValueError, match="one length"):
        audit(CELLS[:5], LSOA, np.ones(20), EVEN, IMD)
    with pytest.raises(ValueError, match="unique"):
        audit(np.array(["a"] * 20), LSOA, np.ones(20), EVEN, IMD)
    with pytest.raises(ValueError, match="population"):
        audit(CELLS, LSOA, np.ones(20), EVEN, IMD.drop(columns="population"))


# ------------------------------------------------------------------------------------------------ load_imd


def test_load_imd_reads_the_simulator_areas_layout(tmp_path):
    p = tmp_path / "areas.csv"
    p.write_text(
        "lsoa_code,lsoa_name,force,local_authority_code,h3_res7,centroid_lon,centroid_lat,population,imd_decile\n"
        "E01000001,City 001A,city-of-london,E09000001,871f1d489ffffff,-0.09,51.51,1500,9\n"
        "E01000002,City 001B,city-of-london,E09000001,871f1d48bffffff,-0.09,51.52,1620.5,1\n"
    )
    imd = load_imd(p)
    assert list(imd.columns) == ["lsoa_code", "imd_decile", "population"]
    assert list(imd["lsoa_code"]) == ["E01000001", "E01000002"]
    assert list(imd["imd_decile"]) == [9, 1] and imd["imd_decile"].dtype.kind == "i"
    assert imd["population"].dtype == float and imd["population"].iloc[1] == pytest.approx(1620.5)


@pytest.mark.parametrize(
    "body, problem",
    [
        ("lsoa_code,imd_decile\nE1,3\n", "missing column(s) population"),
        ("lsoa_code,imd_decile,population\nE1,3,10\nE2,11,10\n", "line 3: invalid imd_decile '11'"),
        ("lsoa_code,imd_decile,population\nE1,2.5,10\n", "line 2: invalid imd_decile '2.5'"),
        ("lsoa_code,imd_decile,population\nE1,,10\n", "line 2: invalid imd_decile ''"),
        ("lsoa_code,imd_decile,population\nE1,3,lots\n", "line 2: invalid population 'lots'"),
        ("lsoa_code,imd_decile,population\nE1,3,-1\n", "line 2: invalid population '-1'"),
        ("lsoa_code,imd_decile,population\nE1,3,1\n,4,1\n", "line 3: empty lsoa_code"),
        ("lsoa_code,imd_decile,population\nE1,3,1\nE1,4,1\n", "line 3: duplicate lsoa_code 'E1'"),
        ("", "empty file"),
    ],
)
def test_load_imd_errors_name_the_file_and_the_problem(tmp_path, body, problem):
    p = tmp_path / "imd_bad.csv"
    p.write_text(body)
    with pytest.raises(ValueError) as exc:
        load_imd(p)
    msg = str(exc.value)
    assert str(p) in msg and problem in msg
