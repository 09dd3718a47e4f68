"""`crimelake interventions`: log an intervention as a delivery, and list the ones in bronze.

`add` writes one CSV into this month's `landing/interventions/` folder, after checking its values with the same
contract rules ingest applies, so a logged intervention is never quarantined for a value the command let through.
A later `add` of the same id in the same month is a corrected delivery (`.v2`, `.v3`, ...) that supersedes the
earlier one; in a later month it is a new delivery, and the latest delivery of each id is the one that counts.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crimelake.cli_common import HomeOpt, _settings, console, err
from crimelake.config import Settings
from data_contracts.seeds import csv_text

app = typer.Typer(help="Log crime-reduction interventions and list the ones ingested.", no_args_is_help=True)
SOURCE, ENTITY = "interventions", "log"
AREA_TYPES = ("h3", "lsoa", "geojson")


def _contract():
    from data_contracts.loader import default_contracts

    return default_contracts()[(SOURCE, ENTITY)]


def read_area_file(path: Path) -> str:
    """The Polygon or MultiPolygon of a GeoJSON file (a geometry, a Feature, or a FeatureCollection of one
    feature), as compact GeoJSON text."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise typer.BadParameter(f"cannot read {path} as GeoJSON: {e}", param_hint="--area-file") from e
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = doc.get("features") or []
        if len(features) != 1:
            raise typer.BadParameter(f"{path} holds {len(features)} features; give a file of one area",
                                     param_hint="--area-file")
        doc = features[0]
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc = doc.get("geometry")
    if not isinstance(doc, dict) or doc.get("type") not in ("Polygon", "MultiPolygon"):
        raise typer.BadParameter(f"{path} is not a GeoJSON Polygon or MultiPolygon", param_hint="--area-file")
    return json.dumps(doc, separators=(",", ":"))


def problems(values: dict[str, str], settings: Settings, month: str) -> list[str]:
    """Every reason the contract's rules would quarantine this row for (empty when it would load)."""
    from crimelake.ingest.reader import FileRejected, parse_bytes
    from crimelake.ingest.validate import check

    contract = _contract()
    text = csv_text(contract.header, [[values.get(c.name, "") for c in contract.columns]])
    try:
        parsed = parse_bytes(Path("intervention.csv"), text.encode(contract.encoding), contract)
    except FileRejected as e:
        return [e.reason]
    out = [b.reason for b in parsed.bad]
    checked = check(parsed, contract, month, settings.h3_resolution)
    for reasons in checked.failed.values():
        out.extend(reasons)
    return out


def landing_file(settings: Settings, intervention_id: str, month: str) -> Path:
    """A new file for this delivery: a corrected one (.vN) when the id was already logged this month."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", intervention_id)  # what the contract's file name pattern allows
    stem = f"interventions-{month}-{name if name[:1].isalnum() else 'id' + name}"
    folder = settings.landing_dir(SOURCE, month)
    path = folder / f"{stem}.csv"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{stem}.v{n}.csv"
    return path


@app.command()
def add(
    intervention_id: Annotated[str, typer.Option("--id", help="Unique id of the intervention, e.g. CHE-2025-014.")],
    kind: Annotated[str, typer.Option(help="What was done: hot_spot_patrol, problem_oriented_policing, cctv, "
                                           "street_lighting, closure_order, youth_outreach, "
                                           "environmental_improvement or other.")],
    force: Annotated[str, typer.Option(help="Force slug whose area holds it, e.g. cheshire.")],
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")],
    agency: Annotated[str, typer.Option(help="Who ran it.")],
    groups: Annotated[str, typer.Option("--groups", help="Forecast groups it meant to reduce, comma- or "
                                                         "';'-separated: all_crime, asb, violence, theft, weapons.")],
    area: Annotated[str | None, typer.Option(help="The area: H3 cell ids (area type h3) or LSOA codes (lsoa), "
                                                  "comma- or ';'-separated.")] = None,
    area_type: Annotated[str | None, typer.Option(help="h3, lsoa or geojson (default: geojson with --area-file, "
                                                       "else h3).")] = None,
    area_file: Annotated[Path | None, typer.Option(help="A GeoJSON file holding the area's Polygon or MultiPolygon "
                                                        "(WGS84).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD; leave out while it runs.")] = None,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    home: HomeOpt = None,
) -> None:
    """Log one intervention: write it as a new delivery into this month's landing folder."""
    settings = _settings(home)
    if (area is None) == (area_file is None):
        raise typer.BadParameter("give the area either as --area or as --area-file", param_hint="--area")
    area_type = area_type or ("geojson" if area_file else "h3")
    if area_type not in AREA_TYPES:
        raise typer.BadParameter(f"{area_type!r} is not one of {', '.join(AREA_TYPES)}", param_hint="--area-type")
    if area_file is not None:
        if area_type != "geojson":
            raise typer.BadParameter("an --area-file holds a geojson area", param_hint="--area-type")
        area_text = read_area_file(area_file)
    else:
        area_text = ";".join(p.strip() for p in re.split(r"[,;]", area or "") if p.strip())
    values = {"intervention_id": intervention_id.strip(), "kind": kind, "area_type": area_type, "area": area_text,
              "force": force, "start_date": start, "end_date": end or "", "agency": agency,
              "target_groups": ";".join(g.strip() for g in re.split(r"[,;]", groups) if g.strip()),
              "description": description}
    month = datetime.now(UTC).strftime("%Y-%m")
    found = problems(values, settings, month)
    if found:
        for reason in found:
            err.print(f"[red]invalid[/red] {reason}")
        raise typer.Exit(2)
    path = landing_file(settings, values["intervention_id"], month)
    path.parent.mkdir(parents=True, exist_ok=True)
    contract = _contract()
    path.write_text(csv_text(contract.header, [[values[c.name] for c in contract.columns]]), encoding="utf-8")
    console.print(f"logged {values['intervention_id']} in {settings.relative(path)}; "
                  f"the next run ingests month {month} of source {SOURCE}")


def _area_summary(area_type: str, area: str) -> str:
    if area_type == "geojson":
        return f"{json.loads(area).get('type', 'geometry')}"
    n = len(area.split(";"))
    return f"{n} {'cell' if area_type == 'h3' else 'LSOA'}{'s' if n != 1 else ''}"


@app.command("list")
def list_(
    force: Annotated[str | None, typer.Option(help="Only this force (slug).")] = None,
    home: HomeOpt = None,
) -> None:
    """List the interventions in bronze (the latest delivery of each)."""
    from crimelake.interventions import read_log

    settings = _settings(home)
    log, version = read_log(settings)
    if version is None:
        path = settings.bronze(SOURCE, ENTITY)
        console.print(f"no interventions ingested yet ({settings.relative(path)} does not exist)")
        return
    rows = log.astype(object).where(log.notna(), None).to_dict("records")
    if force:
        rows = [r for r in rows if r["force"] == force]
    table = Table(title=f"Interventions ({len(rows)})" + (f" in {force}" if force else ""))
    for col in ("id", "kind", "force", "start", "end", "groups", "area", "agency", "delivered"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["intervention_id"], r["kind"], r["force"], str(r["start_date"]),
                      str(r["end_date"]) if r["end_date"] else "ongoing", r["target_groups"],
                      _area_summary(r["area_type"], r["area"]), r["agency"], r["month"])
    console.print(table)
