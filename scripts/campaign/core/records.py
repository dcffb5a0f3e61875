"""The workflow's own records read back so that a damaged one is named, never a traceback naming nothing.

A record (train.json, an evaluation's metrics, the attempts of a training, a
job record) is written atomically, but a copy between servers that was cut
short, a full disk on another tool's write or a hand edit can still damage
one. Every reader here raises DamagedRecord with the file, the line and
column, what is wrong and what to do; callers that show many records (the
status command, the plan) name the damaged one and go on with the others.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FIX = "the record is damaged (a copy or write cut short, or an edit); delete it and run again to have it rebuilt"


class DamagedRecord(ValueError):
    """A record of the workflow's that cannot be read: the message names the file and line, then what to do."""

    def __init__(self, problem: str):
        super().__init__(f"{problem}; {FIX}")
        self.problem = problem  # the file, where in it, and what is wrong


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DamagedRecord(f"{path}: byte {error.start + 1} is not UTF-8 text") from None


def _value(text: str, path: Path, line: int = 1) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno + line - 1} column {error.colno}"
        raise DamagedRecord(f"{path} {where}: {error.msg}") from None


def read_json_record(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON object from `path`, with the keys `required` present."""
    path = Path(path)
    value = _value(_text(path), path)
    if not isinstance(value, dict):
        raise DamagedRecord(f"{path}: holds {type(value).__name__}, not a record (an object)")
    missing = [key for key in required if key not in value]
    if missing:
        raise DamagedRecord(f"{path}: lacks {', '.join(missing)}")
    return value


def read_json_lines(path: str | Path, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One JSON object per line (blank lines skipped), each with the keys `required`."""
    path = Path(path)
    records = []
    for number, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        value = _value(line, path, number)
        if not isinstance(value, dict):
            raise DamagedRecord(f"{path} line {number}: holds {type(value).__name__}, not a record")
        missing = [key for key in required if key not in value]
        if missing:
            raise DamagedRecord(f"{path} line {number}: lacks {', '.join(missing)}")
        records.append(value)
    return records


def set_aside(path: Path, problem: str) -> str:
    """Rename a damaged record to `<name>.damaged` (kept for a look, no longer an output); what was done."""
    aside = path.with_name(path.name + ".damaged")
    os.replace(path, aside)
    return f"Damaged record: {problem}; set aside as {aside.name}"


def set_aside_damaged_records(patterns: list[str]) -> list[str]:
    """Before Snakemake plans: every JSON record matching `patterns` that cannot be read is set aside.

    Otherwise Snakemake would count its job as done and every reader after it
    would fail; set aside, the record is missing, so the plan runs its job again
    (a training is collected again from its run folder where that is intact).
    """
    said = []
    for path in sorted({path for pattern in patterns for path in Path().glob(pattern)}):
        try:
            read_json_record(path)
        except DamagedRecord as damage:
            said.append(f"{set_aside(path, damage.problem)}, so the job that writes it runs again")
    return said


def damage_of(path: str | Path, required: tuple[str, ...] = ()) -> str | None:
    """What is wrong with the JSON record at `path`, or None where it reads."""
    try:
        read_json_record(path, required)
    except DamagedRecord as damage:
        return damage.problem
    return None
