"""Ultralytics' epoch table (results.csv), read so that a damaged one is named, never plotted or guessed at.

One row per epoch, every value a number. A line that is not (a write cut
short by a full disk or a kill, a hand edit) is a DamagedEpochTable naming
the file, the line and the column, instead of a ValueError that names none or
a figure that plots text.
"""

from __future__ import annotations

import csv
from pathlib import Path

FIX = (
    "the table is damaged (a write cut short, or an edit): remove that line, or restore the file from the "
    "run folder's results.csv, then run again"
)


class DamagedEpochTable(ValueError):
    """An epoch table with a line that is not a row of numbers."""


def read_epoch_table(path: Path) -> list[dict[str, float]]:
    """The table's rows, column names stripped of Ultralytics' padding, every value a float."""
    with open(path, newline="") as stream:
        lines = csv.reader(stream)
        header = [name.strip() for name in next(lines, [])]
        rows = []
        for number, values in enumerate(lines, start=2):
            if not any(value.strip() for value in values):
                continue
            if len(values) != len(header):
                raise DamagedEpochTable(
                    f"{path} line {number}: {len(values)} values under {len(header)} columns; {FIX}"
                )
            row = {}
            for name, text in zip(header, values):
                try:
                    row[name] = float(text)
                except ValueError:
                    raise DamagedEpochTable(
                        f"{path} line {number}: {name} is {text.strip()!r}, not a number; {FIX}"
                    ) from None
            rows.append(row)
    return rows
