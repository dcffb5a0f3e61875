"""Which configurations are done, running, failed or still to do.

Works while the campaign runs: it only reads what the training jobs write
(their files are named in layout.TrainingFolder). A training job writes
`job.json` (host, pid, start) when it starts and `train.json` when it has
finished; Ultralytics appends one row per epoch to
`run/results.csv`. A job whose process is gone without `train.json` failed
(or was killed) and will resume on the next run. A job on another server
(a shared results folder) cannot be asked whether it lives: it counts as
running while it writes (monitor samples every second, epochs, checkpoints)
and as stale, with its host and the time of its last write, once it has
written nothing for `--stale-minutes`.

Run it as `campaign status` from the workflow folder.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from campaign.core.configurations import model_order
from campaign.core.epoch_table import DamagedEpochTable, read_epoch_table
from campaign.core.records import DamagedRecord, read_json_lines, read_json_record
from campaign.reporting.summary import batch_note
from campaign.training.run_folder import TrainingFolder

# The class's own table: green done, yellow running, (pale) red to do; stale orange, failed a strong red.
COLOURS = {"done": "#81c784", "running": "#fff176", "stale": "#ffb74d", "failed": "#e53935", "to do": "#ffcdd2"}
# A job on another server is trusted as running while its files change: its
# device monitor writes every second, Ultralytics every epoch.
STALE_AFTER_SECONDS = 600


@dataclass
class ConfigStatus:
    name: str
    state: str
    epochs_done: int
    epochs: int
    device: str = ""
    note: str = ""  # e.g. a batch smaller than the configured one


def _alive(record: dict) -> bool:
    """Whether the job's process still runs (on this host; see _last_sign_of_life for another)."""
    try:
        os.kill(int(record["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _last_sign_of_life(folder: TrainingFolder) -> float:
    """The latest time a training wrote anything: its job record, monitor samples, epochs or checkpoints."""
    candidates = [folder.job_record, folder.live_monitor, folder.epochs, *folder.checkpoints]
    return max((path.stat().st_mtime for path in candidates if path.exists()), default=0.0)


def epoch_times(results_csv: Path) -> list[float]:
    """Each epoch's time so far (DamagedEpochTable where a line is not a row of numbers)."""

    if not results_csv.is_file():
        return []
    return [row["time"] for row in read_epoch_table(results_csv)]


def _attempted_batches(folder: TrainingFolder) -> list[int]:
    history = folder.attempts
    if not history.is_file():
        return []
    return [attempt["batch"] for attempt in read_json_lines(history, required=("batch",))]


def config_status(
    root: Path,
    name: str,
    epochs: int,
    batch: int = 0,
    stale_after: float = STALE_AFTER_SECONDS,
    now: float | None = None,
) -> ConfigStatus:
    """The state of one training, from its files; a job on another host without recent writes is stale."""

    folder = TrainingFolder.of(name, root)
    damages = []  # each damaged file says so on this configuration's line; the others are shown as ever
    try:
        times = epoch_times(folder.epochs)
    except DamagedEpochTable as error:
        times = []
        damages.append(str(error))
    if folder.summary.is_file():
        try:
            summary = read_json_record(folder.summary, required=("epochs_run",))
            note = "; ".join(filter(None, [batch_note(batch, summary) if batch else "", *damages]))
            device = summary.get("device", "")
            return ConfigStatus(name, "done", summary["epochs_run"], epochs, device=device, note=note)
        except DamagedRecord as error:  # the next run sets it aside and collects the training again
            damages.append(f"{error.problem}: the next run makes it again")
    try:
        attempted = _attempted_batches(folder)
    except DamagedRecord as error:
        attempted = []
        damages.append(error.problem)
    damage = "; ".join(damages)
    smaller = [b for b in attempted if batch and b < batch]
    note = f"batch reduced from {batch} to {min(smaller)} after running out of memory" if smaller else ""
    note = "; ".join(filter(None, [note, damage]))
    job_file = folder.job_record
    if not job_file.is_file():
        return ConfigStatus(name, "to do", len(times), epochs, note=note)
    try:
        record = read_json_record(job_file)
    except DamagedRecord as error:
        return ConfigStatus(name, "to do", len(times), epochs, note="; ".join(filter(None, [note, error.problem])))
    device = record.get("device", "")
    if record.get("host") != socket.gethostname():
        # Another server's job: its process cannot be asked, its files can.
        device = f"{record.get('host')} {device}"
        last = _last_sign_of_life(folder)
        if (now if now is not None else time.time()) - last > stale_after:
            since = time.strftime("%Y-%m-%d %H:%M", time.localtime(last))
            note = "; ".join(filter(None, [f"no write from {record.get('host')} since {since}", note]))
            return ConfigStatus(name, "stale", len(times), epochs, device=device, note=note)
    elif not _alive(record):
        return ConfigStatus(name, "failed", len(times), epochs, device=device, note=note)
    return ConfigStatus(name, "running", len(times), epochs, device, note)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def time_left_text(state: str, seconds: float | None) -> str:
    """A configuration's time left as the table, the figure and the status page write it.

    `seconds`: its training and the jobs after it (status_page.Progress.remaining_seconds);
    None where nothing tells it yet ("?"). Nothing once it is done.
    """
    if state == "done":
        return ""
    return format_eta(seconds) if seconds is not None else "?"


def status_table(statuses: list[ConfigStatus], time_left: dict[str, float | None] | None = None) -> str:
    """One line per configuration, then the count of each state; `time_left` fills the column of that name."""
    time_left = time_left or {}
    width = max([len(s.name) for s in statuses] + [13])
    lines = [f"{'configuration':<{width}}  {'state':<8} {'epochs':>9}  {'time left':>9}  device"]
    for s in statuses:
        epochs = f"{s.epochs_done:>4}/{s.epochs:<4}"
        note = f"  ({s.note})" if s.note else ""
        left = time_left_text(s.state, time_left[s.name]) if s.name in time_left else ""
        lines.append(f"{s.name:<{width}}  {s.state:<8} {epochs}  {left:>9}  {s.device}{note}")
    counts = {state: sum(1 for s in statuses if s.state == state) for state in COLOURS}
    lines.append(", ".join(f"{n} {state}" for state, n in counts.items()))
    return "\n".join(lines)


def status_figure(
    statuses: list[ConfigStatus],
    parameters: dict[str, dict],
    out: Path,
    time_left: dict[str, float | None] | None = None,
) -> None:
    """A colour matrix: rows are model sizes, columns the other arguments, one cell per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from campaign.reporting.figures import save_figure  # matplotlib: imported by the one tool that draws

    time_left = time_left or {}
    rows = sorted({parameters[s.name]["model"] for s in statuses}, key=model_order)
    columns = sorted(
        {(parameters[s.name]["batch"], parameters[s.name]["imgsz"], parameters[s.name]["freeze"]) for s in statuses}
    )
    figure, axis = plt.subplots(figsize=(2.2 * len(columns) + 2, 0.9 * len(rows) + 1.5))
    for s in statuses:
        p = parameters[s.name]
        x, y = columns.index((p["batch"], p["imgsz"], p["freeze"])), rows.index(p["model"])
        left = time_left_text(s.state, time_left[s.name]) if s.name in time_left else ""
        text = f"{s.state}{'*' if s.note else ''}\n{s.epochs_done}/{s.epochs}" + (f"\n{left} left" if left else "")
        axis.add_patch(plt.Rectangle((x, y), 0.95, 0.9, color=COLOURS[s.state]))
        axis.text(x + 0.475, y + 0.45, text, ha="center", va="center", fontsize=8)
    axis.set_xlim(0, len(columns))
    axis.set_ylim(len(rows), 0)
    axis.set_xticks([i + 0.475 for i in range(len(columns))], [f"b{b} img{i}\nfreeze {f}" for b, i, f in columns])
    axis.set_yticks([i + 0.45 for i in range(len(rows))], rows)
    axis.set_title("Campaign status (" + time.strftime("%Y-%m-%d %H:%M") + ")")
    for side in axis.spines.values():
        side.set_visible(False)
    save_figure(figure, out)
