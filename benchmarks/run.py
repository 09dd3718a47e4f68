"""`make bench`: run every benchmark and write the results to bench-results/."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import ingest


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


if __name__ == "__main__":
    main()
