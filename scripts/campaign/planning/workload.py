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
passes, each image at the probed validation speed; and, where the caller
counts the jobs, each job's start-up as the probes timed it (a fresh
process loading torch, Ultralytics and the model: seconds that the few
images of a small campaign's evaluation do not outweigh).
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any

from campaign.core.epoch_table import DamagedEpochTable, read_epoch_table
from campaign.core.layout import (
    LATENCY_TABLE,
    PRETRAIN_RUN,
    SHARD_SPLIT,
    campaign_job_benchmarks,
    job_benchmark,
    probes_table,
    result_path,
    split_list,
)
from campaign.core.records import read_json_record
from campaign.evaluation.timing import timing_representatives
from campaign.planning.estimate import (
    epoch_and_job_costs,
    estimate,
    job_startup_seconds,
    read_probes,
    training_fixed_seconds,
)
from campaign.planning.probe import probe_settings
from campaign.training.run_folder import TrainingFolder

# Rules that run per configuration after its training, and whether their benchmark file names add
# a split or a format to the configuration's name (logs/evaluate/<cfg>_<split>.benchmark.tsv).
AFTER_TRAINING = {
    "evaluate": True,
    "bootstrap": True,
    "export": True,
    "latency": False,
    "speed": False,
    "imgsz_study": False,
}
# Jobs that take every core (a timing needs the machine to itself): they run one at a time.
ALONE = {"latency"}


def benchmark_seconds(path: Path) -> float | None:
    """The wall-clock seconds of a Snakemake benchmark file's last run; None where there is none."""
    if not path.is_file():
        return None
    with open(path, newline="") as stream:
        rows = [row for row in csv.DictReader(stream, delimiter="\t") if row.get("s")]
    return float(rows[-1]["s"]) if rows else None


def after_training_seconds(logs: Path, name: str) -> float | None:
    """Seconds of the jobs after one configuration's training, from their benchmark files; None if none ran."""
    seconds = []
    for rule, suffixed in AFTER_TRAINING.items():
        for path in (logs / rule).glob(f"{name}*.benchmark.tsv"):
            stem = path.name.removesuffix(".benchmark.tsv")
            # Not another configuration whose name starts with this one's (`<cfg>_seed1`).
            if (stem.rsplit("_", 1)[0] if suffixed else stem) != name:
                continue
            found = benchmark_seconds(path)
            seconds += [found] if found is not None else []
    return sum(seconds) if seconds else None


def recorded_shards(results: Path = Path("results")) -> dict[str, int] | None:
    """The shard of each configuration as a sharded run recorded it; None where the campaign was never split."""
    path = result_path(SHARD_SPLIT, results)
    return read_json_record(path, required=("configs",))["configs"] if path.is_file() else None


def timed_by(
    configs: dict[str, Any], results: Path = Path("results"), shard_of: dict[str, int] | None = None
) -> dict[str, str]:
    """timing_representatives as the workflow resolves them in a campaign folder's `results`.

    The shards are `shard_of` where given (a sharded run's split), else the
    split a sharded run recorded; the timings kept are those that exist.
    """
    existing = [name for name in configs if result_path(LATENCY_TABLE, results, cfg=name).is_file()]
    return timing_representatives(configs, shard_of or recorded_shards(results), existing)


def planned_work(
    configs: dict[str, Any],
    config: dict[str, Any],
    results: Path = Path("results"),
    logs: Path = Path("logs"),
    after_jobs: dict[str, dict[str, list[str]]] | None = None,
) -> tuple[dict[str, float], dict[str, float]] | None:
    """(training GPU-hours, hours of the jobs after it) of every configuration; None without probes or lists.

    `after_jobs` (ResolvedCampaign.benchmark_stems): the jobs that follow each training, each priced
    with a job's start-up where nothing has measured them yet.
    """

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
    startup = job_startup_seconds(probes)
    measured_ratio = _after_training_ratio(configs, training, logs)
    timed = set(timed_by(configs, results).values())
    trains, afters = {}, {}
    for name, run in configs.items():
        trains[name] = training.get(name, per_cost * run.expected_cost())
        starts = startup * sum(len(stems) for stems in (after_jobs or {}).get(name, {}).values())
        afters[name] = _after_training_hours(
            name, run, trains[name], measured_ratio, config, images, val_s, logs, timed=name in timed, starts=starts
        )
    return trains, afters


def planned_fixed_seconds(configs: dict[str, Any], results: Path = Path("results")) -> dict[str, float]:
    """Each training's seconds besides its epochs as its probe timed them (estimate.training_fixed_seconds)."""
    probes_csv = probes_table(results)
    probes = read_probes(probes_csv) if probes_csv.is_file() else {}
    fixed = {}
    for name, run in configs.items():
        rows = probes.get(probe_settings(run)[0])
        seconds = training_fixed_seconds(rows) if rows else None
        if seconds is not None:
            fixed[name] = seconds
    return fixed


def _after_training_ratio(configs: dict[str, Any], training: dict[str, float], logs: Path) -> float | None:
    """Median hours of the jobs after a training per hour of training, over configurations where they ran."""
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
    starts: float = 0.0,
) -> float:
    """`timed`: the configuration's network is timed on it (for every configuration with that network);
    `starts`: the seconds its jobs take to start, where they are estimated."""
    seconds = after_training_seconds(logs, name)
    if seconds is not None:
        return seconds / 3600
    if measured_ratio is not None:
        return measured_ratio * train_hours
    study, speed = config["study"], config["speed"]
    evaluated = sum(images[split] for split in config["evaluation"]["splits"])
    studied = not study["configs"] or name in study["configs"]
    study_images = images[study["split"]] * sum((size / run.imgsz) ** 2 for size in study["imgsz"])
    passes = speed["warmup"] + speed["repeats"]
    batches = [*speed["batch"], 1]  # the last: a full-size photo from its file
    timed_images = sum(passes * min(batch, speed["images"]) for batch in batches) if timed else 0
    return (starts + val_s * (evaluated + (study_images if studied else 0) + timed_images)) / 3600


def pretraining_left(
    configs: dict[str, Any], config: dict[str, Any], results: Path = Path("results"), logs: Path = Path("logs")
) -> tuple[dict[str, float], dict[str, str]]:
    """The pretrainings not run yet, each priced from the probes of its model, and who waits for which.

    A pretraining is a full training (nothing frozen) of `pretrain.images` for
    `pretrain.epochs` at `pretrain.imgsz`: its probes' seconds per training
    image, scaled by the image area, the unfrozen probes where there are any.
    A pretraining under way is priced by its own epochs instead: those left
    at the seconds per epoch it has taken so far.
    Returns (seconds by "pretrain <model>", that name by each configuration
    that starts from it); nothing where no probe prices it, or it has run.
    """

    pretrain = config["pretrain"]
    probes_csv = probes_table(results)
    if not pretrain["models"]:
        return {}, {}
    found = read_probes(probes_csv).values() if probes_csv.is_file() else []
    rows = [row for probed in found for row in probed if row.get("train_seconds_per_image")]
    imgsz, images, epochs = pretrain["imgsz"], pretrain["images"], pretrain["epochs"]
    left = {}
    for model in pretrain["models"]:
        if benchmark_seconds(job_benchmark("pretrain", model, logs)) is not None:
            continue  # it ran
        per_epoch = _seconds_per_epoch(result_path(PRETRAIN_RUN, results, model=model))
        if per_epoch is not None:
            done = per_epoch[1]
            left[f"pretrain {model}"] = max(epochs - done, 0) * per_epoch[0]
            continue
        probed = [row for row in rows if row["model"] == model]
        unfrozen = [row for row in probed if str(row.get("freeze")) in ("0", "")] or probed
        if not unfrozen:
            continue
        per_image = statistics.median(
            float(row["train_seconds_per_image"]) * (imgsz / float(row["imgsz"])) ** 2 for row in unfrozen
        )
        timed = [(row, costs) for row in unfrozen if (costs := epoch_and_job_costs(row))]
        startup = statistics.median(costs[0] for _, costs in timed) if timed else 0.0
        # Its validation and checkpoint at the end of every epoch, the validation scaled by the image area.
        epoch_end = (
            statistics.median(costs[1] * (imgsz / float(row["imgsz"])) ** 2 + costs[2] for row, costs in timed)
            if timed
            else 0.0
        )
        left[f"pretrain {model}"] = startup + epochs * (per_image * images + epoch_end)
    waits = {
        name: f"pretrain {run.model}"
        for name, run in configs.items()
        if f"pretrain {run.model}" in left and run.pretrained
    }
    return left, waits


def _seconds_per_epoch(run: Path) -> tuple[float, int] | None:
    """(seconds per epoch, epochs done) of a training under way in Ultralytics' run folder `run`; None before one."""
    table = TrainingFolder.around(run).epochs
    try:
        rows = read_epoch_table(table) if table.is_file() else []
    except DamagedEpochTable:
        return None  # being rewritten, or damaged: the probes price it meanwhile
    if not rows or not rows[-1].get("time"):
        return None
    return rows[-1]["time"] / len(rows), len(rows)


def campaign_jobs_seconds(results: Path = Path("results"), logs: Path = Path("logs")) -> list[float]:
    """The seconds of each job made once for the campaign (layout.campaign_job_benchmarks): the tables,
    findings, figures and timeline that a run makes again once its trainings change.

    Each as its last run took where it ran in this folder, else the median of those that ran, else a
    job's start-up as the probes timed it (these load pandas and matplotlib, not torch: an upper bound).
    """
    ran = [benchmark_seconds(path) for path in campaign_job_benchmarks(logs)]
    measured = [seconds for seconds in ran if seconds is not None]
    probes_csv = probes_table(results)
    if measured:
        fallback = statistics.median(measured)
    else:
        fallback = job_startup_seconds(read_probes(probes_csv)) if probes_csv.is_file() else 0.0
    return [seconds if seconds is not None else fallback for seconds in ran]
