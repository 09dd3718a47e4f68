"""The `crimelake` command: generate demo data, land real archives, run the pipeline, inspect the lake."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crimelake.cli_common import HomeOpt, _progress, _settings, console, err
from crimelake.cli_interventions import app as interventions_app
from crimelake.config import Settings
from crimelake.summary import Summary

app = typer.Typer(help="crimelake: map, track and forecast crime concentrations in England and Wales.",
                  no_args_is_help=True, add_completion=False)
ingest_app = typer.Typer(help="Land real extracts for the pipeline.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(interventions_app, name="interventions")


@app.command()
def generate(
    home: HomeOpt = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 7,
    scale: Annotated[str, typer.Option(help="Preset: 'demo' (6 forces, 24 months) or 'national' (44 forces).")] = "demo",
    forces: Annotated[str | None, typer.Option(help="Comma-separated force slugs (overrides the preset).")] = None,
    start: Annotated[str | None, typer.Option(help="First month, YYYY-MM.")] = None,
    months: Annotated[int | None, typer.Option(help="Number of months.")] = None,
    incidents: Annotated[int | None, typer.Option(help="Street-level rows per force and month.")] = None,
    defect_rate: Annotated[float, typer.Option(help="Share of rows given a realistic defect (0 for clean data).")] = 0.003,
    gaps: Annotated[int, typer.Option(min=0, help="Drop N force-months entirely and make N others partial (30-45% of "
                                                  "their street rows), chosen by seed; truth in reference/gaps_truth.csv.")] = 0,
    interventions: Annotated[int | None, typer.Option(
        min=0, help="Interventions with a known effect planted in the crimes, their log landed as a delivery "
                    "(default: 4 at demo scale, 0 at national); truth in reference/interventions_truth.csv.")] = None,
) -> None:
    """Write simulated extracts for every source into the landing folder."""
    from crimelake.simulate import generate as gen

    settings = _settings(home)
    if scale not in ("demo", "national"):
        raise typer.BadParameter(f"unknown scale {scale!r}: use 'demo' or 'national'", param_hint="--scale")
    kwargs = {}
    if start:
        kwargs["start"] = start
    if months:
        kwargs["months"] = months
    if interventions is not None:
        kwargs["interventions"] = interventions
    t0 = time.perf_counter()
    with _progress() as bar:
        tasks: dict[str, int] = {}
        kwargs["gaps"] = gaps

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            summary = gen(settings.landing, seed=seed, forces=forces.split(",") if forces else None,
                          incidents=incidents, defect_rate=defect_rate, scale=scale, progress=progress, **kwargs)
        except ValueError as e:
            bar.stop()
            err.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
    rows = sum(summary.rows.values()) if isinstance(summary.rows, dict) else summary.rows
    console.print(f"Wrote {len(summary.files)} files ({rows:,} rows) to {settings.landing} "
                  f"in {time.perf_counter() - t0:.1f}s.")
    if summary.gaps:
        console.print("Incomplete force-months: " + ", ".join(
            f"{g['force']} {g['month']} {g['kind']}" + (f" ({g['share']:.0%})" if g["kind"] == "partial" else "")
            for g in summary.gaps))
    if summary.defects:
        console.print("Defects injected: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.defects.items())))


@contextlib.contextmanager
def _command(settings: Settings, name: str) -> Iterator[Summary]:
    """A pipeline command's frame: it holds the home (waiting a bounded time), recovers runs whose process died,
    stops cleanly on SIGINT or SIGTERM, and ends with the summary of what failed, exiting 1 when anything did."""
    from crimelake.guard import GaveUp, Guard, Stopped

    summary = Summary()
    guard = Guard(settings, name, say=lambda m: err.print(m, markup=False, highlight=False))
    try:
        with guard:
            yield summary
    except GaveUp as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(e.exit_code) from None
    except (Stopped, KeyboardInterrupt) as e:
        signum = getattr(e, "signum", None) or guard.signum or signal.SIGINT
        err.print(f"[red]Stopped by {signal.Signals(signum).name}[/red]: what did not finish runs next time.")
        for line in summary.lines():
            err.print(line, markup=False, highlight=False)
        raise typer.Exit(128 + signum) from None
    for line in summary.lines():
        console.print(line, markup=False, highlight=False)
    if not summary.ok:
        raise typer.Exit(1)


@ingest_app.command("police-uk")
def ingest_police_uk(
    paths: Annotated[list[Path], typer.Argument(help="YYYY-MM.zip archives or folders of YYYY-MM-<force>-*.csv files.")],
    home: HomeOpt = None,
    run: Annotated[bool, typer.Option(help="Run the pipeline on the landed months afterwards.")] = True,
) -> None:
    """Land real data.police.uk archives (zip or extracted folders, many months) and load them.

    Files already landed are not landed again, but their months still run when their load or transform did not
    finish. Exits 1 when a member could not be landed or a month, file or check failed."""
    from crimelake.police_uk import land

    settings = _settings(home)
    for p in paths:
        if not p.exists():
            err.print(f"[red]error:[/red] {p}: no such file or folder")
            raise typer.Exit(2)
    with _command(settings, "ingest police-uk") as outcome:
        with err.status("Landing files...") as status:
            try:
                summary = land(settings, paths, progress=lambda name: status.update(f"Landed {name}"))
            except ValueError as e:
                err.print(f"[red]error:[/red] {e}")
                raise typer.Exit(2) from None
        from crimelake.audit import record

        record(settings, "ingest", "police_uk", {"paths": [str(p) for p in paths], "landed": len(summary.landed),
                                                 "redelivered": len(summary.redelivered), "months": summary.months,
                                                 "failed": [name for name, _ in summary.failed]})
        console.print(f"Landed {len(summary.landed)} new and {len(summary.redelivered)} re-delivered files for "
                      f"{', '.join(summary.months) or 'no months'}; {len(summary.unchanged)} already landed; "
                      f"{len(summary.ignored)} files that are not street, outcomes or stop-and-search ignored"
                      + (f"; {len(summary.failed)} could not be landed." if summary.failed else "."))
        for name, reason in summary.failed:
            outcome.fail(name, reason)
        if run and summary.touched_months:
            _run(settings, outcome, months=summary.touched_months, everything=False)


def _run(settings: Settings, summary: Summary, months: list[str] | None, everything: bool,
         full_refresh: bool = False) -> None:
    """Ingest what changed (one Dagster run per month), then dbt and the gold exports over the months loaded but
    not yet through a successful transform (those of an earlier run that was stopped or failed included)."""
    from crimelake import lake
    from crimelake.engine import describe
    from crimelake.pipeline import pending, run_landed, run_transform, untransformed_months

    try:
        # Said first, so a Spark engine without its server stops the command before anything is ingested.
        console.print(f"dbt engine: {describe()}")
        todo = pending(settings, months=months, everything=everything)
    except (RuntimeError, ValueError) as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    if todo:
        with _progress() as bar:
            task = bar.add_task("Running ingest", total=len(todo))

            def on_start(month: str, n: int) -> None:
                bar.update(task, description=f"Running ingest {month} ({n} assets)")

            def on_month(mr) -> None:
                bar.advance(task)
                summary.run(mr.month, mr.success, mr.problems, mr.run_id)
                if not mr.success or mr.problems:
                    bar.console.print(f"[yellow]{mr.month}[/yellow]: run {mr.run_id[:8]} "
                                      f"{'succeeded' if mr.success else '[red]failed[/red]'}: "
                                      f"{'; '.join(mr.problems) or 'no failed step or check recorded'}",
                                      highlight=False)

            run_landed(settings, months=months, everything=everything, on_month=on_month, on_start=on_start)
        summary.done.append(f"{len(todo)} month{'s' if len(todo) > 1 else ''} loaded")
    built = lake.table_exists(settings.gold("fct_cell_month_counts"))
    behind = untransformed_months(settings, months)
    if not behind and built and not full_refresh:
        console.print("Nothing to run: every landed month is loaded, unchanged and through a successful transform "
                      "(use --all to reload).")
        return
    earlier = sorted(set(behind) - set(todo))
    if earlier:
        console.print(f"Loaded but not yet through a successful transform (an earlier run stopped or failed): "
                      f"{', '.join(earlier)}.")
    span = (behind[0], behind[-1]) if behind and built and not full_refresh else None
    what = "full refresh" if full_refresh else f"months {span[0]}..{span[1]}" if span else "all months"
    from crimelake.audit import record

    record(settings, "run", "pipeline", {"ingest_months": sorted(todo), "transform": what})
    with err.status(f"Running dbt (build and tests) and gold exports, {what}..."):
        try:
            tr = run_transform(settings, span, full_refresh=full_refresh)
        except ValueError as e:
            err.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
    state = "succeeded" if tr.success else "[red]failed[/red]"
    console.print(f"Transform run {tr.run_id[:8]} ({what}) {state}; failed checks: "
                  f"{', '.join(tr.failed_checks) or 'none'}; warnings: {', '.join(tr.warned_checks) or 'none'}")
    summary.run(f"transform {what}", tr.success, tr.problems, tr.run_id)
    if tr.success:
        summary.done.append(f"transform {what} succeeded")


@app.command()
def run(
    home: HomeOpt = None,
    month: Annotated[list[str] | None, typer.Option(help="Only this month (repeatable).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Reload every landed month, changed or not.")] = False,
    full_refresh: Annotated[bool, typer.Option(help="Rebuild every dbt model from scratch.")] = False,
) -> None:
    """Materialize what has landed through the Dagster definitions (runs appear in the Dagster UI).

    Exits 1 when a month, a file (rejected whole), a blocking check or the transform failed, 75 when it gave up
    waiting for a pool slot or another command (CRIMELAKE_WAIT_SECONDS), 130/143 when stopped by SIGINT/SIGTERM."""
    settings = _settings(home)
    with _command(settings, "run") as summary:
        _run(settings, summary, months=month or None, everything=all_, full_refresh=full_refresh)
        status(home)


@app.command()
def status(home: HomeOpt = None) -> None:
    """Print the lake's tables: Delta versions, months, rows, quarantined rows and rejected files."""
    from crimelake.status import gold_status, table_status

    settings = _settings(home)
    t = Table(title=f"crimelake lake at {settings.lake}")
    for col in ("table", "delta version", "months", "rows", "quarantined", "rejected files", "dup./superseded"):
        t.add_column(col, justify="right" if col not in ("table", "months") else "left")
    for s in table_status(settings):
        months = "-" if not s.months else s.months[0] if len(s.months) == 1 else f"{s.months[0]}..{s.months[-1]} ({len(s.months)})"
        t.add_row(f"{s.source}/{s.entity}", "-" if s.bronze_version is None else str(s.bronze_version), months,
                  f"{s.rows:,}", f"{s.quarantined:,}", str(s.rejected_files), str(s.duplicate_or_superseded_files))
    console.print(t)
    gold = gold_status(settings)
    if gold:
        g = Table(title="gold tables (dbt marts exported to Delta)")
        g.add_column("table")
        g.add_column("delta version", justify="right")
        g.add_column("rows", justify="right")
        for x in gold:
            g.add_row(f"gold/{x.mart}", str(x.version), f"{x.rows:,}")
        console.print(g)


@app.command()
def coverage(
    home: HomeOpt = None,
    source: Annotated[str | None, typer.Option(help="Only this incident source (police_uk, force_rms_ho, ...).")] = None,
    force: Annotated[str | None, typer.Option(help="Only this force (slug).")] = None,
    months: Annotated[int, typer.Option(help="The latest N months.")] = 36,
    as_json: Annotated[bool, typer.Option("--json", help="Print the grid as JSON.")] = False,
) -> None:
    """Print the coverage ledger: which force-months of each source arrived complete, partial or missing."""
    from crimelake.coverage import load, pivot, render, to_json

    settings = _settings(home)
    try:
        grid = pivot(load(settings, source=source, force=force, months=months))
    except (ValueError, FileNotFoundError) as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    if as_json:
        print(to_json(grid))
    else:
        console.print(render(grid))


@app.command()
def maintain(
    home: HomeOpt = None,
    retention_hours: Annotated[int, typer.Option(help="Keep files older versions need for this many hours.")] = 168,
) -> None:
    """Compact and vacuum every bronze, quarantine, gold and public Delta table; print files before and after."""
    from crimelake.lake import maintain_lake

    settings = _settings(home)
    if retention_hours < 0:
        err.print(f"[red]error:[/red] --retention-hours must be >= 0, got {retention_hours}")
        raise typer.Exit(2)
    with err.status("Compacting and vacuuming..."):
        results = maintain_lake(settings.lake, retention_hours=retention_hours)
    t = Table(title=f"Lake maintenance at {settings.lake} (retention {retention_hours} h)")
    for col in ("table", "files before", "files after", "active before", "active after", "retention h"):
        t.add_column(col, justify="left" if col == "table" else "right")
    for r in results:
        t.add_row(r.path.relative_to(settings.lake).as_posix(), str(r.files_before), str(r.files_after),
                  str(r.active_before), str(r.active_after), str(r.retention_hours))
    console.print(t)
    console.print(f"{len(results)} tables: {sum(r.files_before for r in results)} files before, "
                  f"{sum(r.files_after for r in results)} after.")


@app.command()
def demo(
    home: HomeOpt = None,
    seed: Annotated[int, typer.Option(help="Random seed for the simulated data.")] = 7,
    models_: Annotated[bool, typer.Option("--models/--no-models",
                                          help="Also backtest, track and forecast every group.")] = True,
) -> None:
    """Generate the demo data (if the landing folder is empty), run the whole pipeline, print where to look."""
    from crimelake.forecasting import GROUPS

    settings = _settings(home)
    if not any(settings.landing.glob("*/*/*")):
        generate(home=settings.home, seed=seed)
    with _command(settings, "demo") as summary:
        _run(settings, summary, months=None, everything=False)
        status(settings.home)
        if models_:
            _models(settings, summary, list(GROUPS))
        console.print(
            f"\n[bold]Where to look[/bold]\n"
            f"  landing files   {settings.landing}\n"
            f"  Delta lake      {settings.lake} (bronze/, quarantine/, gold/)\n"
            f"  warehouse       {settings.warehouse} (dbt: staging, intermediate, marts)\n"
            f"  dbt docs        make docs  (then open {settings.home / 'dbt-docs' / 'static_index.html'})\n"
            f"  MLflow UI       make mlflow  (then http://127.0.0.1:5000; one experiment per forecast group)\n"
            f"  predictions     {settings.lake / 'ml' / 'predictions'} (Delta, versioned)\n"
            f"  Dagster UI      make ui  (then http://127.0.0.1:3000; runs, checks and metadata are there)\n"
            f"  crime map       make map  (then http://127.0.0.1:8080; keys for detail: crimelake access add)\n"
        )


def _models(settings: Settings, summary: Summary, groups: list[str]) -> None:
    from crimelake.pipeline import run_models

    with _progress() as bar:
        task = bar.add_task("Training and forecasting", total=len(groups))

        def on_group(mr) -> None:
            bar.advance(task)
            md = mr.metadata.get("ml/hotspot_model", {})
            pred = mr.metadata.get("ml/predictions", {})
            change = "new champion" if md.get("champion_changed") else "champion kept"
            bar.console.print(
                f"[bold]{mr.group}[/bold]: champion {md.get('champion_method')} v{md.get('champion_version')} "
                f"({change}; PEI* 5% model {md.get('pei_star_5_model', float('nan')):.3f}, best baseline "
                f"{md.get('best_baseline')} {md.get('pei_star_5_best_baseline', float('nan')):.3f}); "
                + (f"{pred.get('dagster/row_count')} predictions for {pred.get('target_month')}" if pred else
                   "no predictions written")
                + (f"; failed checks: {', '.join(mr.failed_checks)}" if mr.failed_checks else ""))
            summary.run(f"group {mr.group}", mr.success, mr.problems, mr.run_id)
            if md:
                record(settings, "promote" if md.get("champion_changed") else "keep_champion",
                       f"crimelake-hotspots-{mr.group} v{md.get('champion_version')} ({md.get('champion_method')})",
                       {"dagster_run_id": mr.run_id, "mlflow_run_id": md.get("mlflow_run_id"),
                        "reasons": md.get("promotion_reasons")})

        from crimelake.audit import record

        run_models(settings, groups, on_group=on_group)
    from crimelake.pipeline import run_hotspot_tracking

    with err.status("Measuring concentration and classifying emerging hot spots..."):
        tr = run_hotspot_tracking(settings)
    cats = tr.metadata.get("ml/emerging_hotspots", {}).get("all_crime_categories", {})
    console.print(f"Hot spot tracking run {tr.run_id[:8]} {'succeeded' if tr.success else '[red]failed[/red]'}; "
                  f"all_crime emerging classes: {', '.join(f'{k} {v}' for k, v in cats.items()) or 'none'}")
    summary.run("hot spots", tr.success, tr.problems, tr.run_id)
    summary.done.append(f"{len(groups)} forecast group{'s' if len(groups) > 1 else ''} and hot spot tracking run")


@app.command()
def models(
    home: HomeOpt = None,
    group: Annotated[list[str] | None, typer.Option(help="Forecast group (repeatable; default all five).")] = None,
    horizon: Annotated[int | None, typer.Option(
        min=1, help="Months from the last complete month to the forecast month (default: CRIMELAKE_HORIZON, else 1 "
                    "when every force has its own records export, else 2).")] = None,
) -> None:
    """Backtest, track in MLflow, gate and forecast each group through Dagster (runs appear in the UI)."""
    import os

    from crimelake.forecasting import GROUPS, HORIZON_ENV, check_group

    settings = _settings(home)
    groups = [check_group(g) for g in group] if group else list(GROUPS)
    if horizon is not None:
        # The Dagster runs (in this process or spawned workers) read the horizon from the environment.
        os.environ[HORIZON_ENV] = str(horizon)
    with _command(settings, "models") as summary:
        _models(settings, summary, groups)


@app.command()
def backtest(
    home: HomeOpt = None,
    group: Annotated[str, typer.Option(help="Forecast group: all_crime, asb, violence, theft or weapons.")] = "all_crime",
    force: Annotated[str | None, typer.Option(help="Only this force (slug); default the whole study area.")] = None,
    months: Annotated[int, typer.Option(help="Backtest months (rolling origin, one month ahead).")] = 12,
) -> None:
    """Backtest the model and every baseline on the same months and cells; print the table, log it to MLflow."""
    from crimelake.forecasting import check_group, run_backtest

    settings = _settings(home)
    try:
        check_group(group)
        with err.status(f"Backtesting {group} over {months} months...") as st:
            result, _, tracked, _ = run_backtest(settings, group, force=force, months=months,
                                                 register=force is None, progress=lambda m: st.update(m))
    except (ValueError, FileNotFoundError) as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    cols = ["pai_1", "pai_5", "pai_10", "pei_star_1", "pei_star_5", "pei_star_10", "hit_rate_5", "deviance",
            "calibration"]
    t = Table(title=f"Backtest: {group}, {force or 'all forces'}, {months} months (means)")
    t.add_column("method")
    for c in cols:
        t.add_column(c, justify="right")
    summary = result.summary
    for method, row in summary[cols].iterrows():
        style = "bold" if method == "model" else None
        t.add_row(str(method), *(f"{v:.3f}" for v in row), style=style)
    console.print(t)
    d = tracked.decision
    console.print(f"MLflow experiment {tracked.experiment_id}, model run {tracked.model_run_id}"
                  + (f", registered version {tracked.model_version}; champion: {tracked.champion.method} "
                     f"v{tracked.champion.version}" if tracked.model_version and tracked.champion else
                     " (force-level backtests are tracked, not registered)" if not tracked.model_version else
                     ", no champion"))
    for r in d.reasons:
        console.print(f"  - {r}")


@app.command()
def forecast(
    as_of: Annotated[str, typer.Option("--as-of", help="Month to forecast, YYYY-MM; only data before it is used.")],
    out: Annotated[Path, typer.Option(help="Output file: .csv or .parquet.")],
    home: HomeOpt = None,
    group: Annotated[str, typer.Option(help="Forecast group.")] = "all_crime",
    force: Annotated[str | None, typer.Option(help="Only this force (slug).")] = None,
    horizon: Annotated[int | None, typer.Option(
        min=1, help="Months from the last month read to the forecast month (default: CRIMELAKE_HORIZON, else 1 "
                    "when every force has its own records export, else 2).")] = None,
) -> None:
    """Write the forecast for one month, one row per cell of the study area as of the data read, with 90% intervals,
    and append it to the predictions table. Only data up to `horizon` months before --as-of is read."""
    import re

    from crimelake.forecasting import check_group, forecast_as_of

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", as_of):
        err.print(f"[red]error:[/red] --as-of must be YYYY-MM, got {as_of!r}")
        raise typer.Exit(2)
    if out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        err.print(f"[red]error:[/red] {out}: the output must end in .csv or .parquet")
        raise typer.Exit(2)
    settings = _settings(home)
    try:
        check_group(group)
        with err.status(f"Training on the months before {as_of} and forecasting {group}..."):
            frame = forecast_as_of(settings, as_of, group, force=force, out=out, horizon=horizon)
    except (ValueError, FileNotFoundError) as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    from crimelake.audit import record

    record(settings, "export", str(out), {"group": group, "target_month": as_of, "force": force, "rows": len(frame),
                                          "mlflow_run_id": frame["mlflow_run_id"].iloc[0]})
    top = frame.nsmallest(5, "rank")[["h3_cell", "force", "predicted_count", "lower_90", "upper_90", "rank"]]
    console.print(f"Wrote {len(frame):,} cells to {out} (model run {frame['mlflow_run_id'].iloc[0]}, horizon "
                  f"{frame['horizon'].iloc[0]}). Top cells:")
    console.print(top.to_string(index=False))


@app.command()
def trace(
    prediction_id: Annotated[str, typer.Argument(help="A prediction_id from the predictions table or a forecast file.")],
    home: HomeOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole chain as JSON.")] = False,
    rehash: Annotated[bool, typer.Option(help="Read every extract file again rather than trust a digest taken "
                                              "when its size and modification time were as they are now.")] = False,
) -> None:
    """Trace one prediction to the model, feature tables, dbt models, bronze rows and raw extract lines,
    verifying each hop; exits 1 when any link is broken."""
    from rich.tree import Tree

    from crimelake.trace import trace as follow

    settings = _settings(home)
    try:
        t = follow(settings, prediction_id, rehash=rehash)
    except LookupError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    from crimelake.audit import record

    record(settings, "view", prediction_id, {"command": "trace", "verified": t.ok})
    if as_json:
        print(t.to_json())
    else:
        p = t.prediction
        tree = Tree(f"[bold]prediction {prediction_id}[/bold]: cell {p['h3_cell']} ({p['force']}), "
                    f"{p['forecast_group']} {p['target_month']}, predicted {p['predicted_count']:.3f}, rank {p['rank']}")
        for h in t.hops:
            node = tree.add(f"{'[green]verified[/green]' if h.ok else '[red]BROKEN[/red]'} {h.name}: {h.detail}")
            if h.name == "extract files":
                for name, f in h.data.get("files", {}).items():
                    lines = f["lines"]
                    shown = ", ".join(map(str, lines[:12])) + (f" ... ({len(lines)} lines)" if len(lines) > 12 else "")
                    node.add(f"{name} [{f['status']}] sha256 {f['sha256_recorded'][:16]}... {f['contract']}: "
                             f"lines {shown}")
            elif h.name == "dbt models":
                node.add(", ".join(h.data.get("models", [])))
        console.print(tree)
    if not t.ok:
        raise typer.Exit(1)


@app.command()
def mlflow(
    home: HomeOpt = None,
    port: Annotated[int, typer.Option(help="Port for the MLflow UI.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface (loopback by default).")] = "127.0.0.1",
) -> None:
    """Open the MLflow UI on this home's tracking store: experiments per group, model and baselines side by side."""
    import os
    import shutil
    import sys

    settings = _settings(home)
    exe = shutil.which("mlflow") or str(Path(sys.executable).parent / "mlflow")
    ui = f"http://{host}:{port}"
    console.print(f"MLflow UI for {settings.home} at {ui} (Ctrl-C to stop)")
    _print_experiment_links(settings, ui)
    os.execv(exe, [exe, "ui", "--backend-store-uri", settings.mlflow_uri, "--default-artifact-root",
                   settings.mlflow_artifacts.as_uri(), "--host", host, "--port", str(port)])


def _print_experiment_links(settings: Settings, ui: str) -> None:
    """Each forecast group's experiment, linked on its runs: MLflow 3.17 opens experiments in its GenAI layout until
    the browser's "Model training" switch is clicked once."""
    from mlflow.tracking import MlflowClient

    from ml.tracking import experiment_link, experiment_name

    experiments = [e for e in MlflowClient(settings.mlflow_uri).search_experiments()
                   if e.name.startswith(experiment_name(""))]
    if not experiments:
        console.print("No forecast experiments yet: run `crimelake models` first.")
        return
    for e in sorted(experiments, key=lambda e: e.name):
        console.print(f"  {e.name}: {experiment_link(ui, e.experiment_id)}")
    console.print('Or click "Model training" at the top left once; the browser remembers it.')


@app.command()
def ui(
    home: HomeOpt = None,
    port: Annotated[int, typer.Option(help="Port for the Dagster UI.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default).")] = "127.0.0.1",
) -> None:
    """Open the Dagster UI on this home's instance (assets, partitions, checks, sensor, runs)."""
    import os
    import shutil
    import sys

    settings = _settings(home)
    root = Path(__file__).resolve().parent.parent
    dagster = shutil.which("dagster") or str(Path(sys.executable).parent / "dagster")
    console.print(f"Dagster UI for {settings.home} at http://{host}:{port} (Ctrl-C to stop)")
    # Under `dagster dev` dagster-dbt looks for `dbt` on PATH: put this environment's tools first.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    from orchestration.lib.dbt import ensure_manifest

    ensure_manifest()  # parsed here if stale, so the code server and run workers read it as it is
    settings.dagster_instance().dispose()  # its storage created here, before the webserver and daemon open it
    from crimelake.supervise import run_supervised

    # A child rather than exec: `dagster dev` ignores SIGTERM, so this process turns Ctrl-C and SIGTERM into the
    # SIGINT it obeys, for its webserver and daemon alike, and kills what is left after a grace period.
    code = run_supervised([dagster, "dev", "-w", str(root / "workspace.yaml"), "-h", host, "-p", str(port)],
                          cwd=root, say=console.print)
    raise typer.Exit(code)


def _register_map_commands() -> None:
    from crimelake.serve.commands import access_app, serve

    app.add_typer(access_app, name="access")
    app.command()(serve)


_register_map_commands()

if __name__ == "__main__":
    app()
