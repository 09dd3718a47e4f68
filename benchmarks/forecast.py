"""Forecast benchmark: the backtest table on the demo data (model beside every baseline, same months and cells)
and the time to train and score, measured in one process."""

from __future__ import annotations

import functools
import os
import tempfile
import time
from pathlib import Path

from crimelake.config import Settings


@functools.lru_cache(maxsize=1)
def demo_home(workdir: Path | None = None) -> Settings:
    """A home with the demo's gold tables: $CRIMELAKE_BENCH_HOME when it has them, else built here (once per
    process, so every benchmark of a `make bench` run shares it)."""
    from crimelake import lake

    given = os.environ.get("CRIMELAKE_BENCH_HOME")
    if given and lake.table_exists(Settings.from_env(given).gold("fct_cell_month_counts")):
        return Settings.from_env(given).prepare()
    from crimelake.pipeline import run_landed, run_transform
    from crimelake.simulate import generate

    settings = Settings.from_env(Path(workdir or tempfile.mkdtemp(prefix="crimelake-bench-")) / "home").prepare()
    generate(settings.landing)
    run_landed(settings)
    run_transform(settings)
    return settings


def main(groups: tuple[str, ...] = ("all_crime", "asb", "theft")) -> dict:
    from crimelake.forecasting import load_gold, panel_and_context
    from ml.backtest import backtest

    settings = demo_home()
    gold = load_gold(settings)
    panel, context = panel_and_context(gold)
    out = {"cells": panel.n_cells, "months": panel.n_months, "groups": {}}
    for group in groups:
        t0 = time.perf_counter()
        result = backtest(panel, group, months=12, context=context)
        wall = time.perf_counter() - t0
        s = result.summary
        best = result.best_baseline("pei_star_5")
        out["groups"][group] = {
            "table": result.to_markdown(columns=["pai_1", "pai_5", "pai_10", "pei_star_1", "pei_star_5",
                                                 "pei_star_10", "hit_rate_5", "deviance"]),
            "best_baseline": best,
            "model_pei_star_5": round(float(s.loc["model", "pei_star_5"]), 4),
            "best_baseline_pei_star_5": round(float(s.loc[best, "pei_star_5"]), 4),
            "ratio_model_to_best_baseline_pei_star_5": round(float(s.loc["model", "pei_star_5"] / s.loc[best, "pei_star_5"]), 4),
            "seconds_per_method": {k: round(v, 2) for k, v in result.seconds.items()},
            "backtest_wall_seconds": round(wall, 1),
        }
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
