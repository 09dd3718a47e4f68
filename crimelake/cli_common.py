"""What every `crimelake` subcommand shares: the --home option, the consoles and the progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from crimelake.config import Settings

console = Console(soft_wrap=True)
if not console.is_terminal:
    # Piped output (CI logs, files) gets room for the status table instead of the 80-column default.
    console = Console(width=120, soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

HomeOpt = Annotated[Path | None, typer.Option("--home", help="crimelake home folder (default: $CRIMELAKE_HOME or ./var).",
                                              show_default=False)]


def _settings(home: Path | None) -> Settings:
    return Settings.from_env(home).prepare()


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=False)


