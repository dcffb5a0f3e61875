"""One row per configuration: its parameters, then what it achieved."""

from __future__ import annotations

import csv
import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campaign.core.records import read_json_record
from campaign.evaluation.bootstrap import METRICS


def _read_json(path: Path) -> dict:
    return read_json_record(path)


def _speed_at_batch_one(path: Path) -> dict[str, Any]:
    """Latency at batch 1 in fp32 with its spread: PyTorch's, then each exported format's with its accuracy.

    The network's latency (decoded image to boxes) and, beside it, a
    full-size photo's from file to boxes (`end_to_end_ms`).
    """
    with open(path, newline="") as stream:
        rows = [r for r in csv.DictReader(stream) if r["batch"] == "1" and r["half"] == "False"]
    speed: dict[str, Any] = {}
    for row in rows:
        fmt = row.get("format") or "pytorch"
        if row.get("measure") == "end_to_end":
            prefix = "end_to_end" if fmt == "pytorch" else f"{fmt}_end_to_end"
            speed.update({f"{prefix}_ms": float(row["latency_ms"]), f"{prefix}_input": row["input"]})
        elif fmt == "pytorch":
            speed.update(
                latency_ms=float(row["latency_ms"]),
                latency_ms_p10=float(row["latency_ms_p10"]),
                latency_ms_p90=float(row["latency_ms_p90"]),
                inference_ms=float(row["inference_ms"]),
                throughput_ips_b1=float(row["throughput_ips"]),
                speed_device=row["device_name"],
                speed_input=row.get("input", ""),
                timed_config=row.get("timed_config", ""),
                speed_exclusive=row.get("exclusive", ""),
            )
        else:
            speed[f"{fmt}_latency_ms"] = float(row["latency_ms"])
            speed[f"{fmt}_{row['split']}_mAP50-95"] = round(float(row["mAP50-95"]), 4)
    return speed


def batch_note(configured: int, train: dict[str, Any]) -> str:
    """'' where every epoch trained at the configured batch; else how many epochs at which batch."""
    by_batch = train.get("epochs_by_batch") or {}
    reduced = train.get("batch_reduced", train["batch_used"] < configured)
    if not reduced:
        return ""
    largest_first = sorted(by_batch.items(), key=lambda item: -int(item[0]))
    epochs = ", ".join(f"{count} epochs at {batch}" for batch, count in largest_first)
    return f"batch reduced from {configured}: " + (epochs or f"trained at {train['batch_used']}")


@dataclass
class RunFiles:
    """What the summary reads of each training: by configuration, or by (configuration, split)."""

    train: dict[str, Path]
    provenance: dict[str, Path]
    speed: dict[str, Path]
    metrics: dict[tuple[str, str], Path]
    intervals: dict[tuple[str, str], Path]


def summary_rows(configs: list[dict[str, Any]], splits: list[str], files: RunFiles) -> list[dict]:
    rows = []
    for parameters in configs:
        name = parameters["config"]
        train = _read_json(files.train[name])
        row = dict(parameters)
        row["parameters"] = train.get("parameters", "")
        row["gflops_640"] = train.get("gflops_640", "")
        row["batch_used"] = train["batch_used"]
        row["batch_note"] = batch_note(parameters["batch"], train)
        for split in splits:
            metrics = _read_json(files.metrics[name, split])
            intervals = _read_json(files.intervals[name, split])
            for key in METRICS:
                row[f"{split}_{key}"] = round(metrics[key], 4)
                row[f"{split}_{key}_low"] = round(intervals[key]["low"], 4)
                row[f"{split}_{key}_high"] = round(intervals[key]["high"], 4)
        row.update(_speed_at_batch_one(files.speed[name]))
        row["epochs_run"] = train["epochs_run"]
        row["best_epoch"] = train["best_epoch"]
        row["train_hours"] = round(train["train_seconds"] / 3600, 4)
        gpus = parameters["gpus"] if train["device"] != "cpu" else 0
        row["gpu_hours"] = round(train["train_seconds"] / 3600 * gpus, 4)
        row["train_device"] = train["device"]
        # A training that asked for GPUs the installed torch could not use ran on the CPU: said, never hidden.
        row["device_note"] = "trained on the CPU: torch could not use the GPUs" if train.get("device_fallback") else ""
        provenance = _read_json(files.provenance[name])
        row["args_hash"] = provenance["args_hash"]
        row["dataset_hash"] = provenance["dataset_hash"]
        row["pretrained_hash"] = provenance["weights_hash"] or ""
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(no configurations)\n"
    fields = list(rows[0])
    lines = ["| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
    lines += ["| " + " | ".join(_cell(row.get(f, "")) for f in fields) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# Click a column header to sort by it (again to reverse). Numbers sort as
# numbers: each cell carries its raw value in data-value.
_SORT_SCRIPT = """
document.querySelectorAll("th").forEach((header, column) => {
  header.addEventListener("click", () => {
    const body = header.closest("table").tBodies[0];
    const ascending = header.dataset.order !== "ascending";
    document.querySelectorAll("th").forEach((h) => delete h.dataset.order);
    header.dataset.order = ascending ? "ascending" : "descending";
    const key = (row) => row.cells[column].dataset.value;
    const rows = [...body.rows].sort((a, b) => {
      const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      const order = !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);
      return ascending ? order : -order;
    });
    body.append(...rows);
  });
});
"""

_STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 0; }
table { border-collapse: collapse; white-space: nowrap; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: right; }
th { position: sticky; top: 0; background: #f1f5f9; cursor: pointer; user-select: none; }
th[data-order="ascending"]::after { content: " \\25B2"; }
th[data-order="descending"]::after { content: " \\25BC"; }
td:first-child, th:first-child { text-align: left; }
tr:hover td { background: #f8fafc; }
"""


def html_table(rows: list[dict], title: str) -> str:
    """A self-contained HTML page of the rows, sortable by any column (no network needed)."""
    fields = list(rows[0]) if rows else ["config"]
    head = "".join(f"<th>{html.escape(f)}</th>" for f in fields)
    body = "\n".join(
        "<tr>"
        + "".join(
            f'<td data-value="{html.escape(str(row.get(f, "")))}">{html.escape(_cell(row.get(f, "")))}</td>'
            for f in fields
        )
        + "</tr>"
        for row in rows
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n"
        f"</tbody>\n</table>\n<script>{_SORT_SCRIPT}</script>\n</body>\n</html>\n"
    )
