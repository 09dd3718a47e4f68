"""Simulated extracts for every crimelake source, shaped like the real ones and calibrated to the real archive.

`generate()` writes, under `<landing>/<source>/<YYYY-MM>/`, data.police.uk street, outcomes and stop-and-search
files for each force and month; force RMS exports (two forces with Home Office codes and British National Grid
coordinates, two with free-text labels) describing the same crimes as those forces' street files; council
anti-social behaviour reports; and quarterly children's social care indicators. It also writes, under
`<landing>/reference/`, the simulated area table (`areas.csv`), the ground truth of emerging hotspots
(`hotspots_truth.csv`), of injected defects (`defects_truth.csv`) and of missing and partial force-months
(`gaps_truth.csv`). A demo run also plants a few interventions with a known effect in its incidents and writes
their log under `<landing>/interventions/` and their truth in `interventions_truth.csv` (see
`crimelake.simulate.intervention_log`). Everything is simulated: no row describes a real incident, place boundary or person. The same
seed and arguments give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from crimelake.reference.forces import FORCES, force_by_slug
from crimelake.simulate import intervention_log
from crimelake.simulate.areas import build_areas
from crimelake.simulate.catalogue import SLUGS
from crimelake.simulate.council import report_rows, social_care_rows
from crimelake.simulate.defects import Defect
from crimelake.simulate.dynamics import month_index, month_label, plan_hotspots, simulate
from crimelake.simulate.force_rms import HO_FORCES, TEXT_FORCES, RmsState, rms_ho_rows, rms_text_rows
from crimelake.simulate.gaps import TRUTH_COLUMNS, Gap, plan_gaps, thin, truth_rows
from crimelake.simulate.police_uk import OutcomeBook, stop_search_rows, street_rows
from crimelake.simulate.rng import (
    COUNCIL,
    GAPS,
    OUTCOMES,
    RMS,
    SOCIAL_CARE,
    STOP_SEARCH,
    STREET,
    force_index,
    key_of,
    stream,
)
from crimelake.simulate.world import build_world
from crimelake.simulate.writers import GenerateSummary, Writer

__all__ = ["DEMO_FORCES", "PRESETS", "Defect", "Gap", "GenerateSummary", "areas", "force_volumes", "generate"]

DEMO_FORCES = ("bedfordshire", "btp", "cambridgeshire", "cheshire", "city-of-london", "north-wales")
MEDIAN_FORCE_ROWS = 8320  # calibration: median street rows per force and month
PRESETS = {
    "demo": {"forces": DEMO_FORCES, "months": 24, "incidents": 2000, "interventions": 4},
    "national": {"forces": tuple(f.slug for f in FORCES), "months": 1, "incidents": MEDIAN_FORCE_ROWS,
                 "interventions": 0},
}
POINTS_PER_MONTHLY_ROW = 3.4  # map points per street row a month: ~191 distinct points per 1,000 rows over 11 months
STOP_SEARCH_SHARE = {"btp": 0.25, "city-of-london": 0.28}


def _quarters(first: int, months: int) -> list[tuple[str, str]]:
    """(quarter label, partition month) for every quarter whose first month is in the window."""
    return [(f"{m // 12}-Q{m % 12 // 3 + 1}", month_label(m)) for m in range(first, first + months) if m % 3 == 0]


def _plan(forces, months: list[str], quarters, missing: set[tuple[str, str]]) -> list[tuple[str, str, str]]:
    plan = []
    for f in forces:
        for m in months:
            for la in f.local_authorities:
                plan.append(("la_reports", "reports", f"la_reports/{m}/{la.slug}-reports-{m}.csv"))
            if (f.slug, m) in missing:
                continue
            plan.append(("police_uk", "street", f"police_uk/{m}/{m}-{f.slug}-street.csv"))
            if f.is_territorial:
                plan.append(("police_uk", "outcomes", f"police_uk/{m}/{m}-{f.slug}-outcomes.csv"))
            plan.append(("police_uk", "stop_and_search", f"police_uk/{m}/{m}-{f.slug}-stop-and-search.csv"))
            if f.slug in HO_FORCES:
                plan.append(("force_rms_ho", "crimes", f"force_rms_ho/{m}/{f.slug}-rms-{m}.csv"))
            if f.slug in TEXT_FORCES:
                plan.append(("force_rms_text", "crimes", f"force_rms_text/{m}/{f.slug}-incidents-{m}.csv"))
        for la in f.local_authorities:
            for q, m in quarters:
                plan.append(("social_care", "indicators", f"social_care/{m}/{la.slug}-social-care-{q}.csv"))
    return plan


def force_volumes(scale: str = "demo", forces: list[str] | None = None, incidents: int | None = None) -> dict[str, float]:
    """Expected street rows per month for each force of a run: the preset's median-force volume scaled by the
    force's real volume on data.police.uk."""
    if scale not in PRESETS:
        raise ValueError(f"unknown scale {scale!r}: use one of {sorted(PRESETS)}")
    per_median = PRESETS[scale]["incidents"] if incidents is None else int(incidents)
    slugs = forces or PRESETS[scale]["forces"]
    return {s: per_median * force_by_slug(s).monthly_rows / MEDIAN_FORCE_ROWS for s in slugs}


def areas(seed: int = 7, forces: list[str] | None = None) -> pd.DataFrame:
    """The simulated area table: one synthetic LSOA per H3 resolution-7 cell of each force's populated area.

    Columns: lsoa_code, lsoa_name, force, local_authority_code (empty outside the force's listed authorities),
    h3_res7, centroid_lon, centroid_lat, population (simulated), imd_decile (simulated; 1 = most deprived, related
    to the simulated crime intensity but not identical to it).
    """
    slugs = forces or list(DEMO_FORCES)
    frames = [build_areas(force_by_slug(s), seed)[0] for s in slugs]
    return pd.concat(frames, ignore_index=True)


def generate(landing: Path, *, seed: int = 7, forces: list[str] | None = None, start: str = "2024-01",
             months: int | None = None, incidents: int | None = None, defect_rate: float = 0.003,
             scale: str = "demo", h3_resolution: int = 9, gaps: int | Iterable[Gap] | None = None,
             interventions: int | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> GenerateSummary:
    """Write simulated extracts for every source under `landing`; return what was written and every planted defect.

    scale: "demo" (6 forces, 24 months, about 1,500 street rows per force-month, the City of London fewer) or
    "national" (all 44 forces, 1 month, about 500,000 street rows). `forces`, `months` and `incidents` override
    the preset; `incidents` is the street rows per month of a median-sized force (others scale with their real
    volume). `defect_rate` is the share of rows given a defect; 0 writes clean files. `gaps` makes force-months
    incomplete (see `crimelake.simulate.gaps`): a number N drops N force-months chosen by seed entirely and makes N
    others partial (30-45% of their street rows); a list of `Gap`s chooses them. The truth goes to
    `reference/gaps_truth.csv`. Everything else is the same as in the run without gaps. `interventions` plants
    that many interventions with a known effect (see `crimelake.simulate.intervention_log`); by default the
    preset's number (demo 4, national 0), planted only where the run fits them (territorial forces, at least 12
    months, as many as the forces have room for). With none planted, every file is the same as before
    interventions existed.
    """
    if scale not in PRESETS:
        raise ValueError(f"unknown scale {scale!r}: use one of {sorted(PRESETS)}")
    if not 0 <= defect_rate <= 0.2:
        raise ValueError("defect_rate must lie between 0 and 0.2")
    if not 6 <= h3_resolution <= 12:
        raise ValueError("h3_resolution must lie between 6 and 12")
    preset = PRESETS[scale]
    chosen = sorted((force_by_slug(s) for s in (forces or preset["forces"])), key=lambda f: force_index(f.slug))
    if len({f.slug for f in chosen}) != len(chosen):
        raise ValueError("a force is listed twice")
    n_months = preset["months"] if months is None else int(months)
    if n_months < 1 or (incidents is not None and incidents < 1):
        raise ValueError("months and incidents must be positive")
    volumes = force_volumes(scale, [f.slug for f in chosen], incidents)
    first = month_index(start)
    labels = [month_label(first + t) for t in range(n_months)]
    quarters = _quarters(first, n_months)
    planned_gaps = plan_gaps(gaps, [f.slug for f in chosen], labels, seed)
    gap_of = {(g.force, g.month): g for g in planned_gaps}
    missing = {k for k, g in gap_of.items() if g.kind == "missing"}
    explicit = interventions is not None
    if not explicit:
        fits = n_months >= intervention_log.MIN_MONTHS and any(f.is_territorial for f in chosen)
        interventions = preset["interventions"] if fits else 0
    planted = intervention_log.plan(interventions, chosen, n_months)
    placed_all: list[intervention_log.Planted] = []
    tally: dict[str, list[int]] = {}
    landing = Path(landing)
    writer = Writer(landing, seed, defect_rate, _plan(chosen, labels, quarters, missing), progress)
    summary = writer.summary
    summary.gaps = truth_rows(planned_gaps)
    area_frames, truth = [], []
    for force in chosen:
        fi = force_index(force.slug)
        rows_pm = volumes[force.slug]
        world = build_world(force, seed, max(int(POINTS_PER_MONTHLY_ROW * rows_pm), 50), h3_resolution)
        hotspots = plan_hotspots(world, rows_pm, n_months, seed)
        placed = intervention_log.place(planted, world, strict=explicit)
        placed_all += placed
        book = OutcomeBook(n_months)
        state = RmsState(force.slug)
        share = STOP_SEARCH_SHARE.get(force.slug) or 0.08 * stream(seed, STOP_SEARCH, fi).lognormal(0, 0.4)
        for t, inc in enumerate(simulate(world, rows_pm, first, n_months, seed, hotspots)):
            m, slug = inc.month, force.slug
            if placed:  # what an intervention prevents never happens: no source records it
                inc = intervention_log.apply(inc, t, placed, world, stream(seed, intervention_log.INTERVENTIONS, fi, t),
                                             tally)
            # Councils record anti-social behaviour reported to them whatever the force publishes.
            for la in force.local_authorities:
                writer.emit("la_reports", "reports", f"la_reports/{m}/{la.slug}-reports-{m}.csv",
                            report_rows(world, la, inc, rows_pm, stream(seed, COUNCIL, key_of(la.slug), t)))
            gap = gap_of.get((slug, m))
            if gap is not None and gap.kind == "missing":
                book.rows(t, m)  # outcomes due this month are never published
                continue
            if gap is not None:
                inc = thin(inc, gap.share, stream(seed, GAPS, fi, t))
            street = street_rows(world, inc, stream(seed, STREET, fi, t))
            writer.emit("police_uk", "street", f"police_uk/{m}/{m}-{slug}-street.csv", street.columns)
            if force.is_territorial:
                book.add(t, street, stream(seed, OUTCOMES, fi, t))
                writer.emit("police_uk", "outcomes", f"police_uk/{m}/{m}-{slug}-outcomes.csv", book.rows(t, m))
            rng = stream(seed, STOP_SEARCH, fi, t)
            writer.emit("police_uk", "stop_and_search", f"police_uk/{m}/{m}-{slug}-stop-and-search.csv",
                        stop_search_rows(world, m, int(rng.poisson(rows_pm * share)), rng))
            if slug in HO_FORCES:
                writer.emit("force_rms_ho", "crimes", f"force_rms_ho/{m}/{slug}-rms-{m}.csv",
                            rms_ho_rows(world, inc, street.last_outcome, state, stream(seed, RMS, fi, t)))
            if slug in TEXT_FORCES:
                writer.emit("force_rms_text", "crimes", f"force_rms_text/{m}/{slug}-incidents-{m}.csv",
                            rms_text_rows(world, inc, street.last_outcome, state, stream(seed, RMS, fi, t)))
        for la in force.local_authorities:
            for q, m in quarters:
                columns, counts = social_care_rows(world, la, q, stream(seed, SOCIAL_CARE, key_of(la.slug), key_of(q)))
                writer.emit("social_care", "indicators", f"social_care/{m}/{la.slug}-social-care-{q}.csv", columns,
                            truth=counts)
        area_frames.append(world.areas)
        for h in hotspots:
            truth.append({"force": force.slug, "h3_cell": h.cell, "h3_resolution": h3_resolution, "kind": h.kind,
                          "categories": ";".join(c for c, s in zip(SLUGS, h.category_share, strict=True) if s > 0),
                          "start": month_label(first + h.start), "peak": month_label(first + h.peak),
                          "end": month_label(first + h.end), "ring": 1, "peak_rows_per_month": round(h.peak_rows, 1)})
    summary.hotspots = truth
    _write_reference(summary, area_frames, truth)
    summary.files += intervention_log.write(landing, placed_all, first, n_months, tally)
    if progress:
        progress("reference", 1, 1)
    return summary


def _write_reference(summary: GenerateSummary, area_frames: list[pd.DataFrame], truth: list[dict]) -> None:
    ref = summary.landing / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    table = pd.concat(area_frames, ignore_index=True).sort_values("lsoa_code", kind="stable")
    hotspot_cols = ["force", "h3_cell", "h3_resolution", "kind", "categories", "start", "peak", "end", "ring",
                    "peak_rows_per_month"]
    defects = pd.DataFrame([d.__dict__ for d in summary.defect_records],
                           columns=["kind", "source", "entity", "file", "line", "detail"])
    defects["line"] = defects["line"].astype("Int64")
    gaps = pd.DataFrame(summary.gaps, columns=TRUTH_COLUMNS)
    for name, frame in (("areas.csv", table), ("hotspots_truth.csv", pd.DataFrame(truth, columns=hotspot_cols)),
                        ("defects_truth.csv", defects), ("gaps_truth.csv", gaps)):
        path = ref / name
        frame.to_csv(path, index=False, lineterminator="\n")
        summary.files.append(path)

