"""From probes to a plan: memory each configuration needs, whether it fits, hours, and the makespan.

A probe (campaign/planning/probe.py) measured, for one training step of a
configuration, seconds per training image, seconds per validation image and
peak memory at its batch and at half of it, and what a training pays
whatever its data's size: its job's start-up, each epoch's validation (its
set-up included) and checkpoint. A training of E epochs on N training images
then takes about

    start-up + E * (N * train_s / G + validation + checkpoint) + validation

on G GPUs (the last validation: the trainer's final one, on the best
weights). Probes made before those costs were timed give
E * (N * train_s + V * val_s) + V * val_s on V validation images, over G.
Finished trainings refine it: the median of measured / predicted over the
trainings done scales the rest.
Memory is linear in the batch: two probed batches give the slope, so the
largest batch that fits a device of any size follows.
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campaign.planning.probe import EPOCH_AND_JOB_COSTS
from campaign.planning.schedule import Job, schedule


@dataclass
class Estimate:
    config: str
    batch_per_gpu: int
    gpus: int
    memory_mb: float | None  # at the configured batch per GPU: measured, or extrapolated where it did not fit
    fits: bool
    largest_batch: int | None  # per GPU, on the planned device
    hours: float  # wall-clock hours of the training
    device: str  # the probed device's name
    on_gpu: bool = True
    extrapolated: bool = False  # memory_mb from the memory line, not measured at the configured batch

    @property
    def gpu_hours(self) -> float:
        return self.hours * max(self.gpus, 1)

    def advice(self, device_mb: float) -> str:
        if self.fits:
            return ""
        options = []
        if self.largest_batch:
            options.append(f"batch: {self.largest_batch * max(self.gpus, 1)} fits")
        options.append(f"gpus: {max(self.gpus, 1) * 2} halves each GPU's share")
        return f"does not fit in {device_mb:.0f} MB: " + "; or ".join(options)


def read_probes(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Probe rows by probe name (the configured batch first, then smaller ones)."""
    probes: dict[str, list[dict[str, Any]]] = {}
    with open(path, newline="") as stream:
        for row in csv.DictReader(stream):
            probes.setdefault(row["probe"], []).append(row)
    return probes


def _number(value: str) -> float | None:
    return float(value) if value not in ("", None) else None


def memory_line(rows: list[dict[str, Any]]) -> tuple[float, float] | None:
    """(intercept MB, MB per image) through the two smallest batches that ran; None with fewer than two."""
    points = sorted(
        (int(r["batch"]), _number(r["peak_memory_mb"]))
        for r in rows
        if r["fits"] == "True" and _number(r["peak_memory_mb"])
    )
    if len(points) < 2 or points[0][0] == points[1][0]:
        return None
    (b1, m1), (b2, m2) = points[:2]
    slope = max((m2 - m1) / (b2 - b1), 0.0)
    return m1 - slope * b1, slope


def largest_batch(rows: list[dict[str, Any]], device_mb: float) -> int | None:
    line = memory_line(rows)
    if line is None or line[1] <= 0:
        return None
    intercept, slope = line
    return max(0, math.floor((device_mb - intercept) / slope)) or None


def probed_memory_mb(rows: list[dict[str, Any]]) -> tuple[float | None, bool]:
    """A probe's peak memory at its configured batch: measured there, or extrapolated on the memory line.

    Returns (MB or None where neither is possible, whether it was extrapolated).
    """
    batch = int(rows[0].get("configured_batch") or rows[0]["batch"])
    measured = next(
        (_number(r["peak_memory_mb"]) for r in rows if r["fits"] == "True" and int(r["batch"]) == batch), None
    )
    if measured is not None:
        return measured, False
    line = memory_line(rows)
    return (line[0] + line[1] * batch, True) if line else (None, False)


def epoch_and_job_costs(row: dict[str, Any]) -> tuple[float, float, float] | None:
    """(start-up, an epoch's validation, a checkpoint) in seconds from a probe row; None where it did not time them."""
    values = [_number(row.get(key, "")) for key in EPOCH_AND_JOB_COSTS]
    return None if None in values else tuple(values)


def timed_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The row a probe's times are read from: its configured batch where that ran, else the largest that ran."""
    batch = int(rows[0].get("configured_batch") or rows[0]["batch"])
    ran = [r for r in rows if r["fits"] == "True"]
    return next((r for r in ran if int(r["batch"]) == batch), ran[0] if ran else None)


def training_fixed_seconds(rows: list[dict[str, Any]]) -> float | None:
    """A training's seconds besides its epochs, from its probe: its job's start-up and the final validation."""
    timed = timed_row(rows)
    costs = epoch_and_job_costs(timed) if timed else None
    return costs[0] + costs[1] if costs else None


def job_startup_seconds(probes: dict[str, list[dict[str, Any]]]) -> float:
    """The median start-up of a job that loads torch and a model, over every probe that timed one; 0 with none."""
    found = [costs[0] for rows in probes.values() for row in rows if (costs := epoch_and_job_costs(row))]
    return statistics.median(found) if found else 0.0


def estimate(
    config: str,
    parameters: dict[str, Any],
    rows: list[dict[str, Any]],
    train_images: int,
    val_images: int,
    device_mb: float,
) -> Estimate:
    """The estimate of one configuration from its probe's rows."""
    batch = int(rows[0].get("configured_batch") or rows[0]["batch"])
    timed = timed_row(rows)
    if timed is None:
        raise ValueError(f"{config}: no probed batch ran, down to batch 1")
    memory, extrapolated = probed_memory_mb(rows)
    # A batch that was tried must have run; one left untried (a CPU probe) fits where its extrapolation does.
    tried = [r["fits"] == "True" for r in rows if int(r["batch"]) == batch]
    fits = memory is not None and memory <= device_mb and (not tried or any(tried))
    gpus = max(int(parameters.get("gpus", 1)), 1)
    train_s, val_s = float(timed["train_seconds_per_image"]), float(timed["val_seconds_per_image"] or 0)
    epochs = int(parameters["epochs"])
    costs = epoch_and_job_costs(timed)
    if costs:
        startup, validation, checkpoint = costs
        seconds = startup + epochs * (train_images * train_s / gpus + validation + checkpoint) + validation
    else:
        seconds = (epochs * (train_images * train_s + val_images * val_s) + val_images * val_s) / gpus
    return Estimate(
        config=config,
        batch_per_gpu=batch,
        gpus=gpus,
        memory_mb=memory,
        fits=fits,
        largest_batch=largest_batch(rows, device_mb),
        hours=seconds / 3600,
        device=timed["device_name"],
        on_gpu=timed.get("device", "cpu") != "cpu",
        extrapolated=extrapolated,
    )


def calibration(predicted_hours: dict[str, float], measured_hours: dict[str, float]) -> float:
    """Median measured / predicted over the configurations with both; 1 where none has finished."""
    ratios = [measured_hours[n] / predicted_hours[n] for n in measured_hours if predicted_hours.get(n)]
    return statistics.median(ratios) if ratios else 1.0


def makespan(jobs: list[tuple[float, int]], servers: int, gpus_per_server: int) -> float:
    """Longest first on whole GPUs (schedule.schedule); `jobs` are (hours, GPUs), a job never spans servers."""
    planned = [Job(str(index), hours, gpus) for index, (hours, gpus) in enumerate(jobs)]
    return schedule(planned, servers, gpus_per_server).end


@dataclass
class PlannedJob:
    name: str
    hours: float
    gpus: int = 1
    need_mb: float | None = None  # known memory need: it may share a GPU (gpu.pack); None: whole GPUs


@dataclass
class PackedPlan:
    hours: float  # the makespan
    # Per GPU ("server 1 GPU 0"), the groups of jobs that ran on it at the same time.
    together: dict[str, list[list[str]]]


def packed_makespan(
    jobs: list[PlannedJob], servers: int, gpus_per_server: int, device_mb: float, max_share: int
) -> PackedPlan:
    """The makespan when jobs with a known need share GPUs as the leases admit them (schedule.schedule)."""
    planned = [Job(job.name, job.hours, job.gpus, job.need_mb) for job in jobs]
    placed = schedule(planned, servers, gpus_per_server, device_mb, max_share)
    return PackedPlan(placed.end, placed.together)
