"""Markdown reports of evaluated interventions, one file per intervention under ``<home>/reports/interventions``:
what, where and when, each target group's estimate with its 90% interval in words, the pre-trend verdict, the
displacement reading and the caveats any such estimate carries."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from crimelake.config import Settings


def _ratio_words(r: dict) -> str:
    rr, lo, hi = r["rate_ratio"], r["rate_ratio_lo"], r["rate_ratio_hi"]
    if not np.isfinite(rr):
        return f"no estimate: {r.get('note') or 'not evaluated'}"
    change = f"{abs(rr - 1):.0%} {'lower' if rr < 1 else 'higher'}"
    span = f"between {abs(lo - 1):.0%} {'lower' if lo < 1 else 'higher'} and {abs(hi - 1):.0%} " \
           f"{'lower' if hi < 1 else 'higher'}"
    verdict = ("a fall" if hi < 1 else "a rise" if lo > 1 else "no change distinguishable from chance")
    return (f"crime was {change} than the comparison cells predict (rate ratio {rr:.2f}); the 90% interval runs "
            f"{span} (rate ratio {lo:.2f} to {hi:.2f}): {verdict}. That is {r['prevented_per_month']:.1f} crimes "
            f"prevented a month (90% interval {r['prevented_per_month_lo']:.1f} to {r['prevented_per_month_hi']:.1f}).")


def report(rows: pd.DataFrame) -> str:
    """Markdown summary of one intervention's effect rows (one per target group)."""
    first = rows.iloc[0]
    treated = "no" if pd.isna(first["n_treated_cells"]) else int(first["n_treated_cells"])
    ring = 0 if pd.isna(first["n_ring_cells"]) else int(first["n_ring_cells"])
    end = first["end_month"] or "ongoing"
    lines = [f"# Intervention {first['intervention_id']}", "",
             f"- What: {first['kind']} by {first['agency'] or 'an unnamed agency'}"
             + (f" ({first['description']})" if first["description"] else ""),
             f"- Where: force {first['force']}, {treated} H3 cells "
             f"(area given as {first['area_type']}); displacement ring of {ring} cells",
             f"- When: {first['start_month']} to {end}", ""]
    for r in rows.to_dict("records"):
        lines += [f"## {r['group']}", "", f"- Estimate: {_ratio_words(r)}"]
        if r["status"] == "evaluated" and np.isfinite(r["rate_ratio"]):
            credible = "passed" if r["comparison_credible"] else "failed"
            lines.append(f"- Pre-trend check {credible}: treated minus comparison slope {r['pre_trend_slope']:+.3f} "
                         f"of the level a month (p = {r['pre_trend_p']:.2f}); "
                         + ("the comparison moved with the area before it started." if r["comparison_credible"]
                            else "the area and its comparison diverged before it started: read the estimate "
                                 "with caution."))
            wdq = "undefined" if not np.isfinite(r["wdq"]) else f"{r['wdq']:.2f}"
            lines.append(f"- Displacement (WDQ {wdq}): {r['wdq_reading']}.")
        lines.append("")
    lines += ["## Caveats", "",
              "- A matched comparison within the force stands in for what would have happened: anything else "
              "that changed only in the area at the same time is counted as the intervention's effect.",
              "- Recorded crime measures police activity too: more patrols can raise recorded counts.",
              f"- Gold counts version {first['gold_counts_version']}, cells version {first['gold_cells_version']}, "
              f"intervention log version {first['bronze_log_version']}.", ""]
    return "\n".join(lines)


def write_reports(settings: Settings, frame: pd.DataFrame, ids=None) -> list:
    """One markdown report per intervention (all of ``ids``, default every one) under reports/interventions/."""
    out_dir = settings.home / "reports" / "interventions"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for iv_id, rows in frame.groupby("intervention_id", sort=True):
        if ids is not None and iv_id not in ids:
            continue
        path = out_dir / (re.sub(r"[^A-Za-z0-9._-]", "_", str(iv_id)) + ".md")
        path.write_text(report(rows.sort_values("group")))
        written.append(path)
    return written
