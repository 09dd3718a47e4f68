"""Intervention impact evaluation against interventions with a known effect (``python -m benchmarks.interventions``).

Each scenario simulates panels of negative-binomial cell-month counts (cell levels, seasonality, force-month
shocks, cell trends, persistent deviations) with eight interventions each (:mod:`crimelake.simulate.interventions`),
evaluates every intervention with :func:`ml.interventions.evaluate` (other interventions' zones kept out of its
comparison) and compares with the truth:

- ``effect``: a fifth fewer crimes of the targeted group during the intervention; the share of 90% intervals that
  cover the true rate ratio (target 85-95%), beside the plain Poisson interval on the same estimates;
- ``null``: no effect; the share of 90% intervals that exclude a rate ratio of 1 (target at most 10%);
- ``displacement``: a fifth fewer, half of the prevented crimes moved into the ring; the share of WDQs below zero
  where Bowers and Johnson read the WDQ (the treated area improved relative to the control), beside ``effect``;
- ``diverging``: no effect, but each treated area on a trend of its own (+3% a month): how often the pre-trend
  check flags the comparison, beside ``null``;
- ``real_placebo`` (when ``../shared/data/police_uk/lancashire`` is there): placebo interventions, with no
  effect by construction, on hot areas of Lancashire's real counts, ingested through crimelake and read back
  from gold as the forecasts read it: how often the interval excludes no change (target at most 10%) on noise
  nobody simulated.

Intervals are scored only where an estimate is made (enough crimes expected in the treated area); the share made
is reported.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from crimelake.simulate.interventions import simulate_interventions
from ml.interventions import evaluate, exclusion_zone

PANELS, PER_PANEL = 100, 8
SCENARIOS = {
    "effect": {"effect": -0.2},
    "null": {"effect": 0.0},
    "displacement": {"effect": -0.2, "displacement": 0.5},
    "diverging": {"effect": 0.0, "diverging_trend": 0.03},
}


def trials(panels: int, seed: int = 0, *, per_panel: int = PER_PANEL, ring: int = 1, dispersion: str = "quasi",
           **simulation) -> pd.DataFrame:
    """Evaluations of ``panels x per_panel`` simulated interventions joined to their truth, with ``covers`` (the
    interval holds the true rate ratio) and ``excludes_one`` (the interval excludes no change)."""
    frames = []
    for k in range(panels):
        panel, interventions, truth = simulate_interventions(seed * 100_003 + k, per_panel, ring=ring, **simulation)
        zones = [exclusion_zone(iv.area, ring) for iv in interventions]
        for i, iv in enumerate(interventions):
            others = frozenset().union(*(z for j, z in enumerate(zones) if j != i))
            result = evaluate(panel, iv, ring=ring, exclude=others, dispersion=dispersion)
            frames.append(result.merge(truth, on=["intervention_id", "group"]))
    out = pd.concat(frames, ignore_index=True)
    out["covers"] = (out["rate_ratio_lo"] <= out["true_rate_ratio"]) & (out["true_rate_ratio"] <= out["rate_ratio_hi"])
    out["excludes_one"] = (out["rate_ratio_hi"] < 1) | (out["rate_ratio_lo"] > 1)
    return out


def summary(df: pd.DataFrame) -> dict:
    """Coverage, rejection, pre-trend and WDQ rates over the interventions with an estimate."""
    est = df[df["rate_ratio"].notna()]
    read = est[est["wdq_success"] < 0]
    return {
        "interventions": int(len(df)),
        "estimated": int(len(est)),
        "coverage_90": round(float(est["covers"].mean()), 4),
        "excludes_no_change": round(float(est["excludes_one"].mean()), 4),
        "pre_trend_flagged": round(float((~est["comparison_credible"]).mean()), 4),
        "wdq_read": int(len(read)),
        "wdq_below_zero": round(float((read["wdq"] < 0).mean()), 4) if len(read) else None,
        "median_rate_ratio": round(float(est["rate_ratio"].median()), 4),
        "coverage_by_group": {g: round(float(x["covers"].mean()), 3) for g, x in est.groupby("group")},
    }


def lancashire_panel(home: Path):
    """The count panel of the real Lancashire archives, ingested into ``home`` (once) and read from gold."""
    from benchmarks.forecast_real import DATA, ensure_home
    from crimelake.config import Settings
    from crimelake.forecasting import load_gold, panel_and_context

    ensure_home(home, DATA)
    return panel_and_context(load_gold(Settings.from_env(home)))[0]


def real_placebo(panel, rounds: int = 6, seed: int = 0, ring: int = 1) -> pd.DataFrame:
    """Placebo evaluations on a real panel: in each round, areas (a hot cell, or it and its ring) hot in a group
    over the first 24 months, zones apart, each given a start and 6-11 months of 'intervention'."""
    import h3

    from ml.interventions import Intervention

    months, cells = list(panel.months), np.asarray(panel.cells, dtype=object)
    index = pd.Index(cells)
    rng = np.random.default_rng(seed)
    frames = []
    for r in range(rounds):
        placed, zones = [], set()
        for group in ("all_crime", "asb", "violence", "theft"):
            level = np.nanmean(panel.counts[group][:, :24], axis=1)
            hot = np.flatnonzero(level >= np.quantile(level, 0.95))
            for i in rng.permutation(hot)[:40]:
                area = frozenset(h3.grid_disk(cells[i], int(rng.integers(0, 2))))
                zone = exclusion_zone(area, ring + 1)
                if zone & zones or index.get_indexer(list(area)).min() < 0:
                    continue
                zones |= zone
                start = int(rng.integers(24, len(months) - 5))
                end = min(start + int(rng.integers(5, 11)), len(months) - 1)
                placed.append(Intervention(f"placebo-{r}-{len(placed)}", "other", area, str(panel.force[i]),
                                           months[start], months[end], "none", (group,)))
        own = [exclusion_zone(iv.area, ring) for iv in placed]
        for k, iv in enumerate(placed):
            others = frozenset().union(*(z for j, z in enumerate(own) if j != k))
            frames.append(evaluate(panel, iv, ring=ring, exclude=others))
    out = pd.concat(frames, ignore_index=True)
    out["true_rate_ratio"] = 1.0
    out["covers"] = (out["rate_ratio_lo"] <= 1) & (out["rate_ratio_hi"] >= 1)
    out["excludes_one"] = ~out["covers"] & out["rate_ratio"].notna()
    return out


def main(panels: int = PANELS, seed: int = 0, real_home: Path | None = None) -> dict:
    results: dict = {"panels_per_scenario": panels, "interventions_per_panel": PER_PANEL, "seed": seed,
                     "scenarios": {}}
    for name, simulation in SCENARIOS.items():
        t0 = time.perf_counter()
        df = trials(panels, seed, **simulation)
        s = summary(df)
        if name in ("effect", "null"):
            s["poisson_interval"] = summary(trials(panels, seed, dispersion="poisson", **simulation))
        s["seconds"] = round(time.perf_counter() - t0, 1)
        results["scenarios"][name] = {"simulation": simulation, **s}
    from benchmarks.forecast_real import DATA

    if any(DATA.glob("*.zip")):
        import tempfile

        t0 = time.perf_counter()
        home = real_home or Path(tempfile.mkdtemp(prefix="crimelake-bench-")) / "home"
        try:
            panel = lancashire_panel(home)
        except SystemExit as failed:  # the ingest's own message says why; the simulated results still count
            results["scenarios"]["real_placebo"] = {"data": str(DATA), "not_run": str(failed)[-2000:]}
        else:
            s = summary(real_placebo(panel))
            results["scenarios"]["real_placebo"] = {"data": str(DATA), **s,
                                                    "seconds": round(time.perf_counter() - t0, 1)}
    sc = results["scenarios"]
    results["checks"] = {
        "coverage_within_85_95": bool(0.85 <= sc["effect"]["coverage_90"] <= 0.95),
        "null_excludes_at_most_10": bool(sc["null"]["excludes_no_change"] <= 0.10),
        "displacement_wdq_mostly_below_zero": bool(sc["displacement"]["wdq_below_zero"] > 0.5),
    }
    return results


def _print(res: dict) -> None:
    for name, s in res["scenarios"].items():
        if "not_run" in s:
            print(f"{name:>12}: not run: {s['not_run'][-300:]}")
            continue
        poisson = s.get("poisson_interval")
        s = {"wdq_below_zero": None, "wdq_read": 0, **s}
        versus = f" (Poisson interval {poisson['coverage_90']:.3f})" if poisson else ""
        print(f"{name:>12}: {s['estimated']}/{s['interventions']} estimated; 90% coverage {s['coverage_90']:.3f}"
              f"{versus}; excludes no change {s['excludes_no_change']:.3f}; pre-trend flagged "
              f"{s['pre_trend_flagged']:.3f}; WDQ < 0 in {s['wdq_below_zero']} of {s['wdq_read']} read; "
              f"{s['seconds']} s")
    print(res["checks"])


if __name__ == "__main__":
    panels = int(sys.argv[1]) if len(sys.argv) > 1 else PANELS
    res = main(panels, real_home=Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    _print(res)
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "interventions.json").write_text(json.dumps(res, indent=2))
    print(f"Results written to {out / 'interventions.json'}")
