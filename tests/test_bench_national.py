"""The national benchmark's plan and verdicts, on made-up stage records (the benchmark itself takes hours)."""

from __future__ import annotations

from benchmarks.national import evaluate, phases


def _stage(phase: str, stage: str, seconds: float, peak: int = 1000) -> dict:
    return {"phase": phase, "stage": stage, "seconds": seconds, "peak_rss_mb": peak}


def test_a_single_pass_build_is_judged_as_one_pass_with_no_early_month():
    months = [f"m{i}" for i in range(37)]
    assert phases(months, 36, 36) == [("build_1_36", months[:36], False), ("month_37", months[36:], True)]
    records = [_stage("build_1_36", "run", 1600), _stage("build_1_36", "models", 840, 4346),
               _stage("build_1_36", "hotspots", 50), _stage("month_37", "run", 120), _stage("month_37", "models", 200),
               _stage("month_37", "hotspots", 45)]
    verdicts = {t["target"]: t for t in evaluate(records, 36, 36)}
    build = verdicts["build to 36 months (s)"]
    assert build["value"] == 2490 and build["met"] and build["note"].endswith("one pass")
    assert verdicts["incremental month 37 (s)"]["value"] == 365 and not verdicts["incremental month 37 (s)"]["met"]
    assert verdicts["peak RSS of every stage (MB)"]["met"] is False
    assert verdicts["incremental month over early month"]["met"] is None


def test_a_phased_build_compares_the_last_month_with_the_early_one():
    months = [f"m{i}" for i in range(37)]
    plan = phases(months, 36, 16)
    assert [p[0] for p in plan] == ["build_1_16", "month_17", "build_18_36", "month_37"]
    records = [_stage(p, s, 100) for p, *_ in plan for s in ("run", "models", "hotspots")]
    records[-3]["seconds"] = 140  # month 37's run
    verdicts = {t["target"]: t for t in evaluate(records, 36, 16)}
    assert verdicts["incremental month 37 over month 17"]["value"] == round(340 / 300, 2)
    assert verdicts["build to 36 months (s)"]["note"].endswith("extra downstream pass")
