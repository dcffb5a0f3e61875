"""The campaign's state as one self-contained HTML page, with when each training and the whole campaign end.

The page needs no server and no network: a shared folder, a web server's
folder or a phone's browser opening the file all show it. Per configuration:
its state, epochs, best validation mAP50-95 so far, a small curve of it,
host and device, and when it ends. For the campaign: when it ends, from

- the epochs already trained: a running training's own seconds per epoch;
- before that, the probes (`campaign plan --probe`): each training's epochs
  from its probe's seconds per image, validation and checkpoint
  (planning/estimate.py), scaled by how the trainings measured so far
  compare with their probes; without probes, the measured seconds per unit
  of expected cost (RunConfig.expected_cost) times its own cost;
- what a training costs besides its epochs (start-up, the final validation,
  plots): measured on the finished ones (their job's benchmark file against
  their last epoch's time), before any finished as its probe timed its
  start-up and a validation;
- the jobs after each training (evaluations, bootstraps, export, its
  network's timing where it is the first with it, speed table, image-size
  study, detections: `ResolvedCampaign.jobs_after_training`), each rule's jobs
  at the median its benchmark files show once any ran, before that at the
  probes' estimate (a job's start-up and its images at the probed validation
  speed), without probes at what a training costs besides its epochs;

placed as Snakemake runs them: the trainings first (they have priority),
`slots` at a time (the GPUs), running ones first, then the longest first on
the slot that frees first; then the jobs after them, `after_slots` at a time
(one per GPU, or one per core on a CPU-only campaign, where a training holds
every core) where the trainings leave room, the network timings one at a
time (each holds every core); last, the jobs made once for the campaign
(tables, findings, figures, timeline), each as it took where it ran before,
else at a job's start-up. Without probes, before any training has run an
epoch there is nothing to measure from, and the page says so.
"""

from __future__ import annotations

import html
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from campaign.core.configurations import model_order
from campaign.core.epoch_table import DamagedEpochTable, read_epoch_table
from campaign.core.layout import job_benchmark
from campaign.planning.schedule import Job, schedule
from campaign.planning.workload import (
    ALONE,
    after_training_seconds,
    benchmark_seconds,
    planned_fixed_seconds,
    planned_work,
)
from campaign.reporting.status import COLOURS, ConfigStatus, format_eta, time_left_text
from campaign.training.run_folder import TrainingFolder

# What a training's time left is based on, as the page says it.
EPOCHS = "its own epochs"
CALIBRATED = "the probes, scaled by the trainings measured"
PROBES = "the probes"
RATE = "the trainings measured, by cost"


class Planned(NamedTuple):
    """The probes' estimate of one configuration, in seconds."""

    training: float  # its training, start-up and final validation included
    after: float  # the jobs after it
    fixed: float = 0.0  # of `training`: what it costs besides its epochs (start-up, final validation)


@dataclass
class Progress:
    status: ConfigStatus
    curve: list[float]  # validation mAP50-95 per epoch
    remaining_seconds: float | None  # training and the jobs after it; None: nothing to estimate from
    training_seconds: float = 0.0  # of remaining_seconds: the training's
    alone_seconds: float = 0.0  # of remaining_seconds: jobs that run alone (network timings)
    after_jobs: list[float] = field(default_factory=list)  # seconds of each job after it that runs beside others
    alone_jobs: list[float] = field(default_factory=list)  # seconds of each job after it that runs alone
    basis: str = ""  # what its training's time comes from: EPOCHS, CALIBRATED, PROBES or RATE


def epoch_rows(results_csv: Path) -> list[dict[str, float]]:
    """The epochs written so far; none where the table is missing or damaged (the status note names it)."""
    if not results_csv.is_file():
        return []
    try:
        return read_epoch_table(results_csv)
    except DamagedEpochTable:
        return []


def estimate_progress(
    statuses: list[ConfigStatus],
    costs: dict[str, float],
    results: Path,
    logs: Path,
    after_jobs: dict[str, dict[str, list[str]]] | None = None,
    planned: dict[str, Planned] | None = None,
) -> list[Progress]:
    """Each configuration's progress and remaining seconds (see the module's docstring).

    `after_jobs` (ResolvedCampaign.benchmark_stems) counts the jobs after each training that have not run;
    without it, the jobs after a finished training count at their median over those that ran.
    `planned` (planned_seconds: the probes' estimate of each training and of the jobs after it)
    prices what nothing has measured yet, from the first second of the campaign.
    """

    rows = {status.name: epoch_rows(TrainingFolder.of(status.name, results).epochs) for status in statuses}
    per_epoch = {name: epochs[-1]["time"] / len(epochs) for name, epochs in rows.items() if epochs}
    # Seconds per unit of expected cost, as the trainings measured so far ran.
    rates = [per_epoch[s.name] * s.epochs / costs[s.name] for s in statuses if s.name in per_epoch]
    rate = statistics.median(rates) if rates else None
    # The probes scaled by how the trainings measured so far compare with them (the plan's calibration).
    planned = planned or {}
    epochs_planned = {name: plan.training - plan.fixed for name, plan in planned.items()}
    ratios = [
        per_epoch[s.name] * s.epochs / epochs_planned[s.name]
        for s in statuses
        if s.name in per_epoch and epochs_planned.get(s.name, 0) > 0
    ]
    scale = statistics.median(ratios) if ratios else 1.0
    measured_overhead = _training_overhead(statuses, rows, logs)
    measured = _seconds_per_job(after_jobs, logs) if after_jobs else {}
    after_each = 0.0
    if not after_jobs:  # without the job list: the jobs after a training at their median over those that ran
        after = [after_training_seconds(logs, s.name) for s in statuses if s.state == "done"]
        after_each = statistics.median([a for a in after if a is not None] or [0.0])
    found = []
    for status in statuses:
        name = status.name
        curve = [row["metrics/mAP50-95(B)"] for row in rows[name] if "metrics/mAP50-95(B)" in row]
        # Besides its epochs: as the finished trainings took it, before any finished as its probe timed it.
        overhead = measured_overhead if measured_overhead is not None else planned.get(name, Planned(0, 0)).fixed
        if status.state == "done":
            training, basis = 0.0, "done"
        elif name in per_epoch:
            training, basis = per_epoch[name] * (status.epochs - status.epochs_done) + overhead, EPOCHS
        elif name in planned:
            training, basis = epochs_planned[name] * scale + overhead, CALIBRATED if ratios else PROBES
        elif rate is not None:
            training, basis = rate * costs[name] + overhead, RATE
        else:
            found.append(Progress(status, curve, None))
            continue
        if after_jobs:
            jobs = after_jobs[name]
            # What no job of its rule has measured yet: the probes' estimate shared by its jobs, else the
            # time a training takes besides its epochs (start-up, checkpoint load, a validation pass).
            count = sum(len(stems) for stems in jobs.values())
            fallback = planned[name].after / count if name in planned and count else overhead
            together, alone = _jobs_left(jobs, measured, fallback, logs)
        else:
            ran = status.state == "done" and after_training_seconds(logs, name) is not None
            together, alone = ([] if ran or not after_each else [after_each]), []
        remaining = training + sum(together) + sum(alone)
        found.append(Progress(status, curve, remaining, training, sum(alone), together, alone, basis))
    return found


def planned_seconds(
    configs: dict, config: dict, results: Path, logs: Path, after_jobs: dict[str, dict[str, list[str]]] | None = None
) -> dict[str, Planned] | None:
    """The probes' estimate of each configuration; None without probes.

    `after_jobs` (ResolvedCampaign.benchmark_stems) counts the jobs after each training, each priced with
    a job's start-up as the probes timed it.
    """
    work = planned_work(configs, config, results, logs, after_jobs)
    if not work:
        return None
    fixed = planned_fixed_seconds(configs, results)
    return {
        name: Planned(work[0][name] * 3600 / max(run.gpus, 1), work[1][name] * 3600, fixed.get(name, 0.0))
        for name, run in configs.items()
    }


def _training_overhead(statuses: list[ConfigStatus], rows: dict[str, list], logs: Path) -> float | None:
    """Median seconds a finished training took besides its epochs; None before any finished."""
    extra = []
    for status in statuses:
        job = benchmark_seconds(job_benchmark("train", status.name, logs))
        if status.state == "done" and job is not None and rows[status.name]:
            extra.append(max(0.0, job - rows[status.name][-1]["time"]))
    return statistics.median(extra) if extra else None


def _seconds_per_job(after_jobs: dict[str, dict[str, list[str]]], logs: Path) -> dict[str, float]:
    """Each rule's median seconds per job over the jobs that ran; rules none of whose jobs ran are left out."""
    per_rule = {}
    for rule in {rule for jobs in after_jobs.values() for rule in jobs}:
        stems = {stem for jobs in after_jobs.values() for stem in jobs[rule]}
        ran = [s for s in (benchmark_seconds(job_benchmark(rule, stem, logs)) for stem in stems) if s is not None]
        if ran:
            per_rule[rule] = statistics.median(ran)
    return per_rule


def _jobs_left(
    jobs: dict[str, list[str]], measured: dict[str, float], fallback: float, logs: Path
) -> tuple[list[float], list[float]]:
    """The seconds of each job not run yet: (those that can run beside others, those that run alone)."""
    together, alone = [], []
    for rule, stems in jobs.items():
        each = measured.get(rule, fallback)
        left = [each for stem in stems if not job_benchmark(rule, stem, logs).is_file()]
        (alone if rule in ALONE else together).extend(left)
    return together, alone


def campaign_seconds_left(
    progress: list[Progress],
    slots: int,
    after_slots: int | None = None,
    pretraining: tuple[dict[str, float], dict[str, str]] = ({}, {}),
    closing: list[float] = (),
) -> float | None:
    """Until the campaign is done, as planning.schedule places the jobs; None where some cannot be estimated.

    `closing` (workload.campaign_jobs_seconds): the jobs made once for the campaign, which follow every
    other, counted while any other is left.

    The trainings run `slots` at a time (running ones first, then the longest first); each job after a
    training starts once it has ended, `after_slots` at a time in all (default: `slots`); a network's
    timing needs every slot. More jobs after the trainings than trainings at a time is a run without
    GPUs (runs.jobs_at_a_time: one training, a job after it per core): there a training has every core
    and nothing runs beside it, while the pretrainings take a core each, side by side.
    """
    if any(p.remaining_seconds is None for p in progress if p.status.state != "done"):
        return None
    slots = max(slots, 1)
    on_cores = (after_slots or slots) > slots
    # `pretraining` (workload.pretraining_left): the pretrainings left, and which trainings wait for them.
    left, waits = pretraining
    jobs = [Job(name, seconds, training=not on_cores) for name, seconds in left.items()]
    for p in progress:
        name = p.status.name
        if p.training_seconds:
            waiting = waits.get(name) if p.status.state == "to do" else None
            running = p.status.state == "running"
            jobs.append(Job(name, p.training_seconds, after=waiting, running=running, alone=on_cores))
        jobs += [
            Job(f"{name} after {i}", seconds, after=name, training=False) for i, seconds in enumerate(p.after_jobs)
        ]
        jobs += [
            Job(f"{name} alone {i}", seconds, after=name, training=False, alone=True)
            for i, seconds in enumerate(p.alone_jobs)
        ]
    if jobs:
        others = tuple(job.name for job in jobs)
        jobs += [Job(f"campaign {i}", seconds, after=others, training=False) for i, seconds in enumerate(closing)]
    return schedule(jobs, 1, max(slots, after_slots or slots), training_slots=slots).end


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
.matrix { overflow-x: auto; margin: 0 0 1rem; }
.matrix table { width: auto; border-collapse: separate; border-spacing: 2px; }
.matrix th { font-size: .72rem; font-weight: 600; padding: .15rem .2rem; border: none; text-align: center; }
.matrix td.cell { font-size: .68rem; line-height: 1.25; padding: .25rem .2rem; border: none; border-radius: .3rem;
  text-align: center; white-space: nowrap; }
@media (max-width: 700px) {
  body { margin: .5rem; }
  .list thead { display: none; }
  .list, .list tbody, .list tr, .list td { display: block; width: 100%; box-sizing: border-box; }
  .list tr { margin-bottom: .8rem; border: 1px solid #e0e0e0; border-radius: .4rem; }
  .list td { border: none; padding: .2rem .6rem; }
  .list td::before { content: attr(data-label) ": "; color: #757575; font-weight: normal; }
  .list td.state::before { content: ""; }
}
"""


# The varied arguments the class's table puts in its columns (the model is its rows), in this order.
MATRIX_KEYS = ("batch", "imgsz", "freeze", "epochs", "hyp", "pretrained", "gpus", "seed")


def _cell_text(p: Progress) -> str:
    """A configuration in the class's table: its state, epochs, time left and best validation mAP50-95."""
    s = p.status
    parts = [s.state, f"{s.epochs_done}/{s.epochs} ep"]
    if s.state != "done":
        parts.append(f"{time_left_text(s.state, p.remaining_seconds)} left")
    if p.curve:
        parts.append(f"mAP {max(p.curve):.3f}")
    return "<br>".join(html.escape(part) for part in parts)


def matrix_html(progress: list[Progress], parameters: dict[str, dict]) -> str:
    """The class's table: models by size down, the other varied arguments across, each cell coloured by state."""
    by_name = {p.status.name: p for p in progress if p.status.name in parameters}
    if not by_name:
        return ""
    varied = [k for k in MATRIX_KEYS if len({str(parameters[n].get(k)) for n in by_name}) > 1]
    models = sorted({parameters[n]["model"] for n in by_name}, key=model_order)
    columns = sorted({tuple(parameters[n].get(k) for k in varied) for n in by_name}, key=lambda c: [str(v) for v in c])
    short = {"batch": "b", "imgsz": "img", "freeze": "freeze ", "epochs": "ep", "hyp": "", "seed": "seed "}
    head = "".join(
        "<th>"
        + ("<br>".join(html.escape(f"{short.get(k, k + ' ')}{v}") for k, v in zip(varied, column)) or "all")
        + "</th>"
        for column in columns
    )
    body = []
    for model in models:
        cells = []
        for column in columns:
            names = [
                n
                for n in by_name
                if parameters[n]["model"] == model and tuple(parameters[n].get(k) for k in varied) == column
            ]
            cells.append(
                "".join(
                    f'<td class="cell" title="{html.escape(n)}" style="background:{COLOURS[by_name[n].status.state]}">'
                    f"{_cell_text(by_name[n])}</td>"
                    for n in names
                )
                or "<td></td>"
            )
        body.append(f"<tr><th>{html.escape(model)}</th>{''.join(cells)}</tr>")
    return (
        '<div class="matrix"><table><thead><tr><th>model</th>'
        + head
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></div>"
    )


def campaign_end(
    progress: list[Progress],
    slots: int,
    after_slots: int | None = None,
    pretraining: tuple[dict[str, float], dict[str, str]] = ({}, {}),
    closing: list[float] = (),
    now: float | None = None,
) -> str:
    """When the campaign ends and what that rests on, in words: the page's headline, `campaign status`' last line.

    The arguments are campaign_seconds_left's: `pretraining` (workload.pretraining_left) counts the
    pretrainings not run yet, `closing` (workload.campaign_jobs_seconds) the jobs made once for the campaign.
    """
    now = now if now is not None else time.time()
    left = campaign_seconds_left(progress, slots, after_slots, pretraining, closing)
    if left is None:
        return (
            "The campaign's end cannot be estimated yet: no training has run an epoch and there is no probe "
            "(campaign plan --probe estimates every training before it starts)."
        )
    if left == 0:
        return "The campaign is done."
    when = time.strftime("%H:%M", time.localtime(now + left))
    day = "" if time.localtime(now + left).tm_yday == time.localtime(now).tm_yday else " tomorrow or later"
    end = f"The campaign ends around {when}{day} (in {format_eta(left)}, {slots} training(s) at a time)."
    bases = Counter(p.basis for p in progress if p.basis and p.basis != "done")
    if bases:
        said = "; ".join(f"{count} from {basis}" for basis, count in bases.most_common())
        end += f" Trainings left: {said}."
    if pretraining[0]:
        end += f" With {len(pretraining[0])} pretraining(s) first, from the probes or their epochs so far."
    return end


def render_page(
    progress: list[Progress],
    end: str,
    now: float | None = None,
    refresh: int | None = None,
    parameters: dict[str, dict] | None = None,
) -> str:
    """The whole page as one string of HTML: no script, no file or network access of its own.

    `end` (campaign_end) is its headline; `parameters` (RunConfig.parameters() by name) adds the
    class's table above the list.
    """
    now = now if now is not None else time.time()
    counts = {state: sum(p.status.state == state for p in progress) for state in COLOURS}
    rows = []
    for p in progress:
        s = p.status
        best = f"{max(p.curve):.3f}" if p.curve else ""
        eta = time_left_text(s.state, p.remaining_seconds)
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
        f"{matrix_html(progress, parameters or {})}"
        '<table class="list"><thead><tr><th>configuration</th><th>state</th><th>epochs</th><th>best val mAP50-95</th>'
        "<th>curve</th><th>where</th><th>time left</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>\n"
    )
