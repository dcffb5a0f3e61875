"""Hours of each configuration's work on a GPU: its training and the jobs after it.

A training's hours come from its probe (estimate.py: seconds per training
and validation image, times the split sizes and epochs); a configuration
without a probe gets the probed ones' hours per unit of expected cost times
its own cost. The jobs after a training (evaluations, bootstrap, export,
speed and image-size studies) take what their Snakemake benchmark files say
once any of them ran for that configuration; before, what they took for the
other configurations relative to their trainings; before any ran, an
estimate from the probe's validation speed: every evaluated split, each
image size of the study (scaled by its area) and, for the first
configuration of each network (which is timed for all of them), the timed
passes, each image at the probed validation speed.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from campaign.core.layout import probes_table, split_list


def planned_hours(
    configs: dict[str, Any], config: dict[str, Any], results: Path = Path("results"), logs: Path = Path("logs")
) -> dict[str, float] | None:
    """GPU-hours of every configuration (training and the jobs after it); None without probes or split lists."""
    work = planned_work(configs, config, results, logs)
    return {name: work[0][name] + work[1][name] for name in configs} if work else None


def planned_work(
    configs: dict[str, Any], config: dict[str, Any], results: Path = Path("results"), logs: Path = Path("logs")
) -> tuple[dict[str, float], dict[str, float]] | None:
    """(training GPU-hours, hours of the jobs after it) of every configuration; None without probes or lists."""
    from campaign.evaluation.timing import timed_by
    from campaign.planning.estimate import estimate, read_probes
    from campaign.planning.probe import probe_settings

    probes_csv = probes_table(results)
    lists = {split: split_list(split, results) for split in ("train", "val", "test")}
    if not probes_csv.is_file() or not all(path.is_file() for path in lists.values()):
        return None
    images = {split: len(path.read_text().split()) for split, path in lists.items()}
    probes = read_probes(probes_csv)
    training, validation = {}, {}
    for name, run in configs.items():
        rows = probes.get(probe_settings(run)[0])
        if rows:
            try:
                found = estimate(name, run.parameters(), rows, images["train"], images["val"], 1e12)
            except ValueError:  # no probed batch ran
                continue
            training[name] = found.gpu_hours
            validation[name] = float(rows[0]["val_seconds_per_image"] or 0)
    if not training:
        return None
    per_cost = statistics.median(training[n] / configs[n].expected_cost() for n in training)
    val_s = statistics.median(validation.values())
    measured_ratio = _after_training_ratio(configs, training, logs)
    timed = set(timed_by(configs, results).values())
    trains, afters = {}, {}
    for name, run in configs.items():
        trains[name] = training.get(name, per_cost * run.expected_cost())
        afters[name] = _after_training_hours(
            name, run, trains[name], measured_ratio, config, images, val_s, logs, timed=name in timed
        )
    return trains, afters


def _after_training_ratio(configs: dict[str, Any], training: dict[str, float], logs: Path) -> float | None:
    """Median hours of the jobs after a training per hour of training, over configurations where they ran."""
    from campaign.reporting.status_page import after_training_seconds

    ratios = []
    for name in training:
        seconds = after_training_seconds(logs, name)
        if seconds is not None and training[name] > 0:
            ratios.append(seconds / 3600 / training[name])
    return statistics.median(ratios) if ratios else None


def _after_training_hours(
    name: str,
    run: Any,
    train_hours: float,
    measured_ratio: float | None,
    config: dict[str, Any],
    images: dict[str, int],
    val_s: float,
    logs: Path,
    timed: bool,
) -> float:
    """`timed`: the configuration's network is timed on it (for every configuration with that network)."""
    from campaign.reporting.status_page import after_training_seconds

    seconds = after_training_seconds(logs, name)
    if seconds is not None:
        return seconds / 3600
    if measured_ratio is not None:
        return measured_ratio * train_hours
    evaluation = config.get("evaluation") or {}
    study = config.get("study") or {}
    speed = config.get("speed") or {}
    evaluated = sum(images[split] for split in evaluation.get("splits", ["val", "test"]))
    studied = study.get("configs") is None or name in (study.get("configs") or [])
    study_images = images[study.get("split", "val")] * sum(
        (size / run.imgsz) ** 2 for size in study.get("imgsz", [320, 416, 512, 640])
    )
    passes = speed.get("warmup", 3) + speed.get("repeats", 10)
    batches = [*speed.get("batch", [1, 32]), 1]  # the last: a full-size photo from its file
    timed_images = sum(passes * min(batch, speed.get("images", 32)) for batch in batches) if timed else 0
    return val_s * (evaluated + (study_images if studied else 0) + timed_images) / 3600
