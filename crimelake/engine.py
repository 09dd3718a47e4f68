"""The dbt engines: DuckDB in-process (the default) or Spark through Spark Connect.

Sail (`pysail`, the `spark` extra) is a Spark Connect server that reads and writes Delta offline; `sail_server`
starts one on loopback for a build and always stops it. On Spark the H3 geometry of the cells comes from a Delta
table written here in Python (`write_cell_geometry`): dbt-spark runs Python models only on Databricks clusters, and
neither Spark nor DuckDB (offline) has H3 functions in SQL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ENGINES = ("duckdb", "spark")
# dbt target of each engine (dbt_project/profiles.yml).
TARGETS = {"duckdb": "local", "spark": "spark"}
# Where the Spark build writes its Delta tables, and the geometry table it reads, relative to the home.
SPARK_OUTPUT = Path("lake") / "spark"
CELL_GEOMETRY = Path("lake") / "reference" / "h3_cells"
INCIDENT_TABLES = (("police_uk", "street"), ("force_rms_ho", "crimes"), ("force_rms_text", "crimes"))


def engine_from_env() -> str:
    """CRIMELAKE_ENGINE (duckdb or spark; duckdb when unset)."""
    engine = os.environ.get("CRIMELAKE_ENGINE", "duckdb").strip().lower() or "duckdb"
    if engine not in ENGINES:
        raise ValueError(f"CRIMELAKE_ENGINE={engine!r}: expected one of {', '.join(ENGINES)}")
    return engine


def describe(engine: str | None = None) -> str:
    """One line naming the engine dbt runs on (CRIMELAKE_ENGINE when not given) and where it builds; on Spark a
    clear error when SPARK_REMOTE, the server's Spark Connect URL, is not set."""
    engine = engine or engine_from_env()
    if engine == "duckdb":
        return "DuckDB (the warehouse file <home>/warehouse/crimelake.duckdb)"
    url = os.environ.get("SPARK_REMOTE", "").strip()
    if not url:
        raise RuntimeError("CRIMELAKE_ENGINE=spark needs SPARK_REMOTE, the Spark Connect URL of a running server "
                           "(for example sc://127.0.0.1:50051 for a local Sail server): see the README section "
                           "'Running dbt on Spark'")
    return f"Spark at {url} (Delta tables under <home>/{SPARK_OUTPUT.as_posix()}, one full build per run)"


# `make install` puts the spark extra in an environment of its own beside the project's: with the Spark Connect
# client importable, great-expectations and MLflow probe for a Spark session and can end the process.
SPARK_ENV = Path(__file__).resolve().parents[1] / ".venv-spark"


def spark_tool(name: str) -> str | None:
    """A command of the spark extra (`sail`, or the `dbt` that has dbt-spark): the spark environment's, else this
    environment's when it has the extra, else one on PATH (`sail` only); None when none is installed."""
    import importlib.util

    there = SPARK_ENV / "bin" / name
    if there.exists():
        return str(there)
    here = Path(sys.executable).parent / name
    if name == "dbt":
        return str(here) if here.exists() and importlib.util.find_spec("dbt.adapters.spark") else None
    return str(here) if here.exists() else shutil.which(name)


def sail_executable() -> str:
    """The `sail` command of the `spark` extra; a clear error when the extra is not installed."""
    found = spark_tool("sail")
    if not found:
        raise RuntimeError("the Spark engine needs Sail: `make install` installs it in .venv-spark (or "
                           "`UV_PROJECT_ENVIRONMENT=.venv-spark uv sync --extra spark`)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Sail server exited with code {proc.returncode} before it listened on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"the Sail server did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@contextlib.contextmanager
def sail_server(port: int | None = None, *, mode: str = "local", log: Path | None = None,
                timeout: float = 60.0) -> Iterator[str]:
    """A Sail Spark Connect server on 127.0.0.1 for the duration of the block; yields its `sc://` URL (the value
    SPARK_REMOTE takes). The server is stopped (and killed if it does not stop) on leaving the block.

    `mode` is SAIL_MODE. Sail 0.7.2 in `local-cluster` mode fails to write a table selected from a Delta table of
    a single file through any scalar function ("ExtendedScalarUdf: no UDF found for md5"), so `local` is the
    default. The catalog (which tables exist) lives as long as one Spark session, not the server: a second session,
such as the next dbt invocation, sees none of the first one's tables (tests/test_dbt_spark.py checks it)."""
    port = port or free_port()
    env = {**os.environ, "SAIL_MODE": mode}
    workdir = Path(tempfile.mkdtemp(prefix="sail-"))
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    command = [sail_executable(), "spark", "server", "--ip", "127.0.0.1", "--port", str(port),
               "--directory", str(workdir)]
    proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, proc, timeout)
        yield f"sc://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()
        shutil.rmtree(workdir, ignore_errors=True)


def clear_spark_output(home: Path) -> None:
    """Remove the Delta tables a previous Spark build wrote (lake/spark). Sail keeps its catalog per Spark session,
    so a new dbt run sees none of them: it would take every incremental model for a first build, and Sail 0.7.2
    appends a CREATE OR REPLACE TABLE into a location that already holds a Delta table. A build on Sail is
    therefore a full build into an empty location (a persistent metastore, such as Databricks' Unity Catalog,
    keeps the tables between runs and needs no clearing)."""
    shutil.rmtree(home / SPARK_OUTPUT, ignore_errors=True)


def cell_geometry(cells: list[str]):
    """Centre, area (km2) and ring-1 and ring-2 neighbours of each H3 cell (a pandas frame, one row per cell)."""
    import h3
    import pandas as pd

    rows = []
    for cell in cells:
        lat, lon = h3.cell_to_latlng(cell)
        rows.append((cell, h3.get_resolution(cell), lon, lat, h3.cell_area(cell, unit="km^2"),
                     ",".join(sorted(h3.grid_ring(cell, 1))), ",".join(sorted(h3.grid_ring(cell, 2)))))
    frame = pd.DataFrame(rows, columns=["h3_cell", "h3_resolution", "centre_longitude", "centre_latitude",
                                        "area_km2", "neighbours_ring1", "neighbours_ring2"])
    return frame.astype({"h3_cell": "object", "h3_resolution": "int64", "centre_longitude": "float64",
                         "centre_latitude": "float64", "area_km2": "float64", "neighbours_ring1": "object",
                         "neighbours_ring2": "object"})


def write_cell_geometry(home: Path) -> int:
    """The geometry of every H3 cell of the bronze incident tables, added to `lake/reference/h3_cells` (cells
    already there are kept: a cell's geometry never changes). Returns how many cells were added. The Spark
    build reads it where DuckDB runs the Python model int_cells_geometry."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable, write_deltalake

    cells: set[str] = set()
    for source, entity in INCIDENT_TABLES:
        path = home / "lake" / "bronze" / source / entity
        if DeltaTable.is_deltatable(str(path)):
            column = DeltaTable(str(path)).to_pyarrow_dataset().to_table(columns=["h3_cell"]).column("h3_cell")
            cells.update(pc.unique(column.drop_null()).to_pylist())
    target = home / CELL_GEOMETRY
    if DeltaTable.is_deltatable(str(target)):
        cells -= set(DeltaTable(str(target)).to_pyarrow_dataset().to_table(columns=["h3_cell"])
                     .column("h3_cell").to_pylist())
    if not cells and DeltaTable.is_deltatable(str(target)):
        return 0
    frame = cell_geometry(sorted(cells))
    schema = pa.schema([("h3_cell", pa.string()), ("h3_resolution", pa.int64()), ("centre_longitude", pa.float64()),
                        ("centre_latitude", pa.float64()), ("area_km2", pa.float64()),
                        ("neighbours_ring1", pa.string()), ("neighbours_ring2", pa.string())])
    write_deltalake(str(target), pa.Table.from_pandas(frame, schema=schema, preserve_index=False), mode="append")
    return len(frame)
