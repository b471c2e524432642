"""How every benchmark reports: a table of its figures on the console, and the same as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    return sorted_values[max(0, int(len(sorted_values) * fraction) - 1)]


def report(title: str, figures: Mapping[str, Any], path: Path) -> None:
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, str(value))
    Console().print(table)
    _write(figures, path)


def compare(
    title: str, common: Mapping[str, Any], columns: Mapping[str, Mapping[str, Any]], path: Path
) -> None:
    """Several subjects measured alike, side by side: a column each (the figures of the first
    name the rows); the JSON holds *common* and each subject under its name."""
    table = Table(title=title)
    table.add_column("figure", no_wrap=True)
    for name in columns:
        table.add_column(name, justify="right")
    first = next(iter(columns.values()))
    for key in first:
        table.add_row(key, *(_cell(figures.get(key, "")) for figures in columns.values()))
    console = Console(width=max(Console().width, 120))  # piped output is not cut at 80
    console.print(table)
    console.print(", ".join(f"{key}: {value}" for key, value in common.items()))
    _write({**common, **columns}, path)


def _cell(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def _write(figures: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
