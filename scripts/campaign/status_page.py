"""The campaign's state as one self-contained HTML page, with when each training and the whole campaign end.

The page needs no server and no network: a shared folder, a web server's
folder or a phone's browser opening the file all show it. Per configuration:
its state, epochs, best validation mAP50-95 so far, a small curve of it,
host and device, and when it ends. For the campaign: when it ends, from

- the epochs already trained: a running training's own seconds per epoch;
- the finished and running trainings for the rest: each configuration to do
  gets the measured seconds per unit of expected cost (model size, image
  area, frozen layers: RunConfig.expected_cost) times its own cost, the
  median over those measured;
- the jobs after each training (evaluations, bootstrap, export, speed and
  image-size studies), from their Snakemake benchmark files once any ran;

placed on `slots` trainings at a time (the GPUs), running ones first, then
the longest first on the slot that frees first. Before any training has
run an epoch there is nothing to measure from, and the page says so.
"""

from __future__ import annotations

import csv
import heapq
import html
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from .epoch_table import DamagedEpochTable, read_epoch_table
from .status import COLOURS, ConfigStatus, format_eta

# Rules that run per configuration after its training, and whether their benchmark file names add
# a split or a format to the configuration's name (logs/evaluate/<cfg>_<split>.benchmark.tsv).
AFTER_TRAINING = {"evaluate": True, "bootstrap": True, "export": True, "speed": False, "imgsz_study": False}


@dataclass
class Progress:
    status: ConfigStatus
    curve: list[float]  # validation mAP50-95 per epoch
    remaining_seconds: float | None  # training and the jobs after it; None: nothing to estimate from


def epoch_rows(results_csv: Path) -> list[dict[str, float]]:
    """The epochs written so far; none where the table is missing or damaged (the status note names it)."""
    if not results_csv.is_file():
        return []
    try:
        return read_epoch_table(results_csv)
    except DamagedEpochTable:
        return []


def after_training_seconds(logs: Path, name: str) -> float | None:
    """Seconds of the jobs after one configuration's training, from their benchmark files; None if none ran."""
    seconds = []
    for rule, suffixed in AFTER_TRAINING.items():
        for path in (logs / rule).glob(f"{name}*.benchmark.tsv"):
            stem = path.name.removesuffix(".benchmark.tsv")
            # Not another configuration whose name starts with this one's (`<cfg>_seed1`).
            if (stem.rsplit("_", 1)[0] if suffixed else stem) != name:
                continue
            with open(path, newline="") as stream:
                seconds += [float(row["s"]) for row in csv.DictReader(stream, delimiter="\t")][-1:]
    return sum(seconds) if seconds else None


def estimate_progress(
    statuses: list[ConfigStatus], costs: dict[str, float], results: Path, logs: Path
) -> list[Progress]:
    """Each configuration's progress and remaining seconds (see the module's docstring)."""
    from .layout import TrainingFolder

    rows = {status.name: epoch_rows(TrainingFolder.of(status.name, results).epochs) for status in statuses}
    per_epoch = {name: epochs[-1]["time"] / len(epochs) for name, epochs in rows.items() if epochs}
    # Seconds per unit of expected cost, as the trainings measured so far ran.
    rates = [per_epoch[s.name] * s.epochs / costs[s.name] for s in statuses if s.name in per_epoch]
    rate = statistics.median(rates) if rates else None
    after = [a for a in (after_training_seconds(logs, s.name) for s in statuses if s.state == "done") if a is not None]
    after_each = statistics.median(after) if after else 0.0
    found = []
    for status in statuses:
        if status.state == "done":
            remaining = 0.0 if after_training_seconds(logs, status.name) is not None else after_each
        elif status.name in per_epoch:
            remaining = per_epoch[status.name] * (status.epochs - status.epochs_done) + after_each
        elif rate is not None:
            remaining = rate * costs[status.name] + after_each
        else:
            remaining = None
        curve = [row["metrics/mAP50-95(B)"] for row in rows[status.name] if "metrics/mAP50-95(B)" in row]
        found.append(Progress(status, curve, remaining))
    return found


def campaign_seconds_left(progress: list[Progress], slots: int) -> float | None:
    """Until the last configuration is done, `slots` trainings at a time; None where some cannot be estimated."""
    if any(p.remaining_seconds is None for p in progress if p.status.state != "done"):
        return None
    loads = [0.0] * max(slots, 1)
    running = sorted((p.remaining_seconds for p in progress if p.status.state == "running"), reverse=True)
    waiting = sorted(
        (p.remaining_seconds for p in progress if p.status.state != "running" and p.remaining_seconds), reverse=True
    )
    for seconds in [*running, *waiting]:
        heapq.heapreplace(loads, loads[0] + seconds)
    return max(loads)


def sparkline(values: list[float], width: int = 120, height: int = 28) -> str:
    """An inline SVG polyline of a curve (empty where there is none)."""
    if len(values) < 2:
        return ""
    top = max(values) or 1.0
    step = width / (len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values))
    return (
        f'<svg class="curve" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="validation mAP50-95 per epoch"><polyline fill="none" stroke="#1565c0" stroke-width="1.5" '
        f'points="{points}"/></svg>'
    )


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1rem; color: #212121; }
h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
.end { font-size: 1.1rem; margin: .2rem 0 .8rem; }
.counts span { display: inline-block; margin: 0 .6rem .4rem 0; padding: .1rem .5rem; border-radius: .8rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e0e0e0; vertical-align: middle; }
td.state { font-weight: 600; border-left: .5rem solid; }
.small { color: #616161; font-size: .85rem; }
@media (max-width: 700px) {
  thead { display: none; }
  table, tbody, tr, td { display: block; width: 100%; box-sizing: border-box; }
  tr { margin-bottom: .8rem; border: 1px solid #e0e0e0; border-radius: .4rem; }
  td { border: none; padding: .2rem .6rem; }
  td::before { content: attr(data-label) ": "; color: #757575; font-weight: normal; }
  td.state::before { content: ""; }
}
"""


def render_page(progress: list[Progress], slots: int, now: float | None = None, refresh: int | None = None) -> str:
    """The whole page as one string of HTML: no script, no file or network access of its own."""
    now = now if now is not None else time.time()
    left = campaign_seconds_left(progress, slots)
    if left is None:
        end = "The campaign's end cannot be estimated yet: no training has finished an epoch."
    elif left == 0:
        end = "The campaign is done."
    else:
        when = time.strftime("%H:%M", time.localtime(now + left))
        day = "" if time.localtime(now + left).tm_yday == time.localtime(now).tm_yday else " tomorrow or later"
        end = f"The campaign ends around {when}{day} (in {format_eta(left)}, {slots} training(s) at a time)."
    counts = {state: sum(p.status.state == state for p in progress) for state in COLOURS}
    rows = []
    for p in progress:
        s = p.status
        best = f"{max(p.curve):.3f}" if p.curve else ""
        eta = "" if s.state == "done" else format_eta(p.remaining_seconds) if p.remaining_seconds else "?"
        note = f'<div class="small">{html.escape(s.note)}</div>' if s.note else ""
        rows.append(
            f'<tr class="{s.state.replace(" ", "-")}">'
            f'<td data-label="configuration">{html.escape(s.name)}{note}</td>'
            f'<td class="state" data-label="state" style="border-left-color:{COLOURS[s.state]}">{s.state}</td>'
            f'<td data-label="epochs">{s.epochs_done}/{s.epochs}</td>'
            f'<td data-label="best val mAP50-95">{best}</td>'
            f'<td data-label="curve">{sparkline(p.curve)}</td>'
            f'<td data-label="where">{html.escape(s.device)}</td>'
            f'<td data-label="time left">{eta}</td></tr>'
        )
    refresh_tag = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    chips = "".join(f'<span style="background:{COLOURS[state]}">{n} {state}</span>' for state, n in counts.items() if n)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{refresh_tag}<title>Campaign status</title><style>{STYLE}</style></head><body>"
        f'<h1>Campaign status</h1><p class="small">as of {stamp}</p>'
        f'<p class="end">{html.escape(end)}</p><p class="counts">{chips}</p>'
        "<table><thead><tr><th>configuration</th><th>state</th><th>epochs</th><th>best val mAP50-95</th>"
        "<th>curve</th><th>where</th><th>time left</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>\n"
    )
