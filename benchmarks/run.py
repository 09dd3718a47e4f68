"""`make bench`: run every benchmark and write the results to bench-results/ (`make bench-national` runs the
national build on its own: it takes hours)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import forecast, forecast_real, hotspots, ingest, interventions, serve


def main() -> None:
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    console = Console()
    console.print("[bold]Ingest: one national-scale month[/bold] (generating data, then baseline and crimelake)")
    res = ingest.main()
    (out / "ingest.json").write_text(json.dumps(res, indent=2))
    t = Table(title="Ingest benchmark (same files, same process)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for k, v in res.items():
        t.add_row(k, f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v))
    console.print(t)
    console.print(f"Results written to {out / 'ingest.json'}")

    console.print("[bold]Forecast: 12-month rolling-origin backtest on the demo data[/bold]")
    fres = forecast.main()
    (out / "forecast.json").write_text(json.dumps(fres, indent=2))
    for group, r in fres["groups"].items():
        console.print(f"\n[bold]{group}[/bold] ({fres['cells']:,} cells, {fres['months']} months)")
        console.print(r["table"])
        console.print(f"model / best baseline ({r['best_baseline']}) PEI* at 5%: "
                      f"{r['ratio_model_to_best_baseline_pei_star_5']}; seconds per method: {r['seconds_per_method']}")
    console.print(f"Results written to {out / 'forecast.json'}")

    console.print("[bold]Forecasting on real data: Lancashire's archives, every group at horizons 1 and 2[/bold]")
    real = forecast_real.main([])  # writes bench-results/forecast-real.json; the ingested home is kept for reruns
    console.print({k: v for k, v in real.items() if k != "groups"} if isinstance(real, dict) else real)

    console.print("[bold]Map API: the public counts layer for every month, app against a per-request read[/bold]")
    sres = serve.main()
    (out / "serve.json").write_text(json.dumps(sres, indent=2))
    console.print(sres)
    console.print(f"Results written to {out / 'serve.json'}")

    console.print("[bold]Hot spots: Gi*, concentration and emerging classes on a synthetic national grid[/bold]")
    hres = hotspots.main()
    (out / "hotspots.json").write_text(json.dumps(hres, indent=2))
    console.print(hres)
    console.print(f"Results written to {out / 'hotspots.json'}")

    console.print("[bold]Interventions: simulated known effects, and placebos on Lancashire's real counts[/bold]")
    ires = interventions.main()
    (out / "interventions.json").write_text(json.dumps(ires, indent=2))
    interventions._print(ires)
    console.print(f"Results written to {out / 'interventions.json'}")


if __name__ == "__main__":
    main()
