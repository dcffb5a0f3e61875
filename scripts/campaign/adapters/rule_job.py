"""The one layer between Snakemake and the library.

A rule's script reads the `snakemake` object and hands it here: this module
turns it into plain values (the GPUs the job declared and the config's `gpu`
section for the lease, its wildcards, params and inputs for the provenance
record, a training's request), so that no module below it sees Snakemake.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from campaign.core.configurations import stable_hash
from campaign.core.io import atomic_write_bytes, atomic_write_json, job_logger
from campaign.core.layout import WORKFLOW_DIR
from campaign.core.provenance import build_record, dataset_hash, file_hash, now, provenance
from campaign.core.yolo_env import prepare_ultralytics
from campaign.gpus.jobs import leased_device
from campaign.gpus.monitor import FIELDS as MONITOR_FIELDS
from campaign.training.attempts import earlier_attempts, set_aside_damaged_history
from campaign.training.disk_space import stop_if_still_no_space
from campaign.training.run_folder import TrainingFolder
from campaign.training.trainer import TrainingRequest, export_outputs, train_with_attempts
from campaign.training.training_lock import one_trainer


@dataclass
class ModelJob:
    """A rule job running a model: its log, the device it leased and when it started."""

    log: logging.Logger
    device: str
    started: str
    # Why a job that asked for GPUs runs on the CPU (torch cannot use this server's GPUs); None otherwise.
    fallback: str | None = None


def job_name(snakemake) -> str:
    """'evaluate cfg=yolov8n_b16 split=test': the job as leases and logs name it."""
    return f"{snakemake.rule} {' '.join(f'{k}={v}' for k, v in snakemake.wildcards.items())}".strip()


@contextmanager
def model_job(
    snakemake,
    settings_dir: Path,
    *,
    cpu_allowed: bool = False,
    monitor_csv: Path | None = None,
    tensorboard_dir: Path | None = None,
    tensorboard: bool = False,
) -> Iterator[ModelJob]:
    """Log to the rule's log, run Ultralytics offline with private settings, lease the job's declared GPUs.

    `monitor_csv` samples the leased devices while the job runs; `tensorboard`
    keeps Ultralytics' TensorBoard logging (trainings only).
    """

    log = job_logger(snakemake.log[0])
    started = now()
    prepare_ultralytics(settings_dir, tensorboard=tensorboard)
    gpus = int(snakemake.resources.get("gpu", 0))
    with leased_device(
        gpus,
        # How GPUs are leased, and below what to do on running out of memory, are read from the
        # config, not passed as params: they decide how a job runs, not what it makes, and a
        # changed param would make Snakemake train every finished configuration again.
        snakemake.config.get("gpu", {}),
        job_name(snakemake),
        log,
        monitor_csv=monitor_csv,
        tensorboard_dir=tensorboard_dir,
        cpu_allowed=cpu_allowed,
        need_mb=snakemake.resources.get("gpu_mb") or None,
    ) as lease:
        yield ModelJob(log, lease.ultralytics_device(), started, lease.fallback)


def data_hash(snakemake) -> str:
    """The cleaned dataset the job read, by content (manifest and split lists), where the rule gives it."""
    given = snakemake.input
    if "manifest" not in given.keys():
        return ""
    return dataset_hash(Path(given.manifest), [Path(given[split]) for split in ("train", "val", "test")])


def record_provenance(snakemake, job: ModelJob, weights: Path | None = None) -> None:
    """The job's `provenance` output: arguments, data, weights, software, device, host and times."""
    record = provenance(
        config_name=snakemake.wildcards.get("cfg", snakemake.wildcards.get("model", "")),
        args={**dict(snakemake.params.get("args", {}) or {}), "model": snakemake.params.get("model")},
        args_hash=snakemake.params.get("args_hash") or "",
        dataset=data_hash(snakemake),
        weights=weights,
        device=job.device,
        started=job.started,
        workflow_dir=WORKFLOW_DIR,
    )
    record["rule"] = snakemake.rule
    record["device_fallback"] = job.fallback
    # Which copy of the data the job read: the cleaned dataset, or one shrunk to a training size.
    record["data_file"] = snakemake.input.get("dataset")
    atomic_write_json(snakemake.output.provenance, record)


def monitor_header() -> bytes:
    """An empty monitor table: a training whose devices could not be read still declares its samples."""
    return (",".join(MONITOR_FIELDS) + "\n").encode()


def run_training(snakemake) -> None:
    """Rules train and pretrain: train (resuming what an interrupted attempt left), then write the outputs."""

    given, params = snakemake.input, snakemake.params
    weights = Path(given.weights) if given.get("weights") else None
    data = Path(given.dataset)
    request = TrainingRequest(
        model=params.model,
        data=data,
        folder=TrainingFolder.around(Path(params.run_dir)),
        args=dict(params.args),
        attempt_key=stable_hash(
            {
                "args": params.get("args_hash") or "",
                "data": data_hash(snakemake) or file_hash(data),
                "data_file": str(data),
                "weights": file_hash(weights) if weights else None,
            }
        ),
        weights=weights,
        gpus=int(snakemake.resources.get("gpu", 1) or 1),
        threads=snakemake.threads,
        out_of_memory_policy=snakemake.config["training"]["on_out_of_memory"],
        announce=snakemake.rule == "train",
    )
    folder = request.folder
    # One trainer per run: the lock is held before anything in the folder is
    # read or written, through the export of the outputs (training_lock.py).
    with one_trainer(folder, job_name(snakemake), job_logger(snakemake.log[0])):
        set_aside_damaged_history(folder, job_logger(snakemake.log[0]))
        # Before anything is written: a disk still too full for the last attempt is said at once.
        stop_if_still_no_space(earlier_attempts(folder, request.attempt_key), folder.run)
        # The monitor writes beside the run, not in it: a fresh attempt replaces the run folder.
        with model_job(
            snakemake,
            folder.path / f".ultralytics_{folder.run_name}",
            monitor_csv=folder.live_monitor,
            tensorboard_dir=folder.monitor_tensorboard,
            tensorboard=True,
        ) as job:
            summary = train_with_attempts(request, job.device, job.started, job.log)
        summary.update(build_record(job.device), device_fallback=job.fallback)
        output = snakemake.output
        if output.get("monitor"):  # every attempt's samples, now that they are complete
            samples = folder.live_monitor
            atomic_write_bytes(output.monitor, samples.read_bytes() if samples.exists() else monitor_header())
        results_csv = output.get("results")
        export_outputs(
            folder.run,
            Path(output.weights),
            Path(results_csv) if results_csv else None,
            Path(output.summary),
            summary,
        )
        record_provenance(snakemake, job, weights)
        job.log.info("finished: %s", summary)
