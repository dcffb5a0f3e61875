"""Small file helpers: atomic writes, hashing, logging to a Snakemake log."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import secrets
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file so that readers see either the old or the complete new content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its files are private (0600), and results on a
    # shared server must keep the permissions the user's umask gives.
    temporary = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def csv_text(rows: Iterable[dict[str, Any]], fields: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def atomic_write_csv(path: str | Path, rows: Iterable[dict[str, Any]], fields: list[str]) -> None:
    atomic_write_text(path, csv_text(rows, fields))


# The job's standard error before job_logger sent it to the log: Snakemake's terminal, for say_on_terminal.
_terminal: int | None = None


def say_on_terminal(text: str) -> None:
    """Write `text` (and a newline) where Snakemake's own messages go, besides the log: what nobody may miss."""
    os.write(_terminal if _terminal is not None else 2, (text.rstrip("\n") + "\n").encode())


def job_logger(log_path: str | Path | None, name: str = "campaign") -> logging.Logger:
    """A logger for one job; everything the job prints goes to its log file.

    Standard output and error are redirected at the file-descriptor level, so
    the output of libraries (Ultralytics' epoch lines, warnings from C code)
    lands in the job's Snakemake log as well, instead of interleaving with
    other jobs on the terminal.
    """
    global _terminal
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        if _terminal is None:
            _terminal = os.dup(2)
        with open(log_path, "a") as stream:
            os.dup2(stream.fileno(), 1)
            os.dup2(stream.fileno(), 2)
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger.addHandler(handler)
    logger.propagate = False
    return logger
