"""Train one configuration with Ultralytics, resuming an interrupted attempt.

The Ultralytics run folder (`run/`, holding last.pt and the TensorBoard log)
is not a declared Snakemake output, so a failed or killed job leaves it in
place for the next attempt to resume from. The declared outputs (best.pt,
results.csv, train.json) are copied out atomically only once training has
finished.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .attempts import (
    batch_for_attempt,
    begin_attempt,
    checkpoint_progress,
    earlier_attempts,
    epochs_by_batch,
    interrupts_raised,
    memory_failure,
    read_checkpoint,
    record_attempt,
    record_silent_end,
    stderr_copy,
    write_job_record,
)
from .io import atomic_write_bytes, atomic_write_json
from .layout import TrainingFolder
from .memory_evidence import out_of_memory_in, stderr_copied_to


def _args_file(run_dir: Path) -> Path:
    """Arguments of the attempt in run_dir, kept beside it: Ultralytics' DDP launcher empties run_dir."""
    return run_dir.with_name(f"{run_dir.name}.args.json")


def _run_state(run_dir: Path, args_hash: str) -> tuple[str, int]:
    """('fresh' | 'stale' | 'damaged' | 'resume' | 'finished', last epoch done) of an earlier attempt.

    Epochs count from 1, as in results.csv (checkpoints count from 0).
    """
    last = run_dir / "weights" / "last.pt"
    stored = _args_file(run_dir)
    if not last.is_file() or not stored.is_file():
        return "fresh", 0
    if json.loads(stored.read_text()).get("args_hash") != args_hash:
        return "stale", 0
    checkpoint = read_checkpoint(last)
    if checkpoint is None:
        return "damaged", 0
    return _checkpoint_state(checkpoint)


def _checkpoint_state(checkpoint: dict[str, Any]) -> tuple[str, int]:
    # Ultralytics marks a finished run by stripping the optimizer and setting epoch -1.
    if checkpoint.get("epoch", -1) == -1:
        return "finished", 0
    return "resume", checkpoint["epoch"] + 1


def _recover_damaged_run(run_dir: Path, log: logging.Logger) -> tuple[str, int]:
    """Resume from best.pt where last.pt was cut short; start afresh where both were.

    Ultralytics writes last.pt in place, so a job killed during that write
    (a dropped SSH session, a node failure) leaves it incomplete, and every
    later attempt would fail on it. best.pt is written after last.pt, from
    the same epoch or an earlier one, so one of the two is whole.
    """
    weights = run_dir / "weights"
    checkpoint = read_checkpoint(weights / "best.pt")
    if checkpoint is None:
        _set_aside(run_dir, "damaged", "last.pt and best.pt are both incomplete", log)
        return "fresh", 0
    state, epoch = _checkpoint_state(checkpoint)
    log.info("last.pt is incomplete (killed while it was written): continuing from best.pt (%s)", state)
    if state == "resume":
        atomic_write_bytes(weights / "last.pt", (weights / "best.pt").read_bytes())
    return state, epoch


def _drop_epochs_after(results_csv: Path, last_epoch: int, log: logging.Logger) -> None:
    """Forget result rows of epochs the checkpoint does not contain.

    Ultralytics appends an epoch's row to results.csv before it saves
    last.pt; a job killed in between would otherwise list that epoch twice
    once it has been trained again.
    """
    if not results_csv.is_file():
        return
    lines = results_csv.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if int(float(line.split(",", 1)[0])) <= last_epoch]
    if len(kept) != len(lines):
        log.info("dropping %d result row(s) after epoch %d, trained again now", len(lines) - len(kept), last_epoch)
        atomic_write_bytes(results_csv, "".join(kept).encode())


def _set_aside(run_dir: Path, label: str, reason: str, log: logging.Logger) -> None:
    """Keep an earlier attempt that cannot be resumed as run.<label>-<time>, for a person to look at."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = run_dir.with_name(f"{run_dir.name}.{label}-{stamp}")
    run_dir.rename(target)
    log.info("%s: kept the interrupted attempt aside as %s and starting afresh", reason, target)


def train_model(
    model: str,
    data: Path,
    run_dir: Path,
    train_args: dict[str, Any],
    args_hash: str,
    device: str,
    weights: Path | None,
    log: logging.Logger,
) -> dict[str, Any]:
    """Train (or resume) into run_dir; return a summary of the finished run."""
    from ultralytics import YOLO

    run_dir = run_dir.resolve()
    state, last_epoch = _run_state(run_dir, args_hash)
    if state == "stale":
        _set_aside(run_dir, "stale", "arguments, data or weights changed since the interrupted attempt", log)
        state = "fresh"
    elif state == "damaged":
        state, last_epoch = _recover_damaged_run(run_dir, log)
    started = time.time()
    if state == "resume":
        log.info("resuming the interrupted run in %s after epoch %d", run_dir, last_epoch)
        _drop_epochs_after(run_dir / "results.csv", last_epoch, log)
        YOLO(str(run_dir / "weights" / "last.pt")).train(
            resume=True, device=device, data=str(data), batch=train_args["batch"]
        )
    elif state == "fresh":
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        atomic_write_json(_args_file(run_dir), {"args_hash": args_hash, "model": model, "args": train_args})
        yolo = YOLO(f"{model}.yaml")
        start: dict[str, Any] = {}
        if weights is not None:
            log.info("starting from pretrained weights %s", weights)
            yolo.load(str(weights))
            # The trainer rebuilds the network for the dataset's classes and fills it from `pretrained`:
            # named, that is the checkpoint itself, so a head trained on the same classes carries over
            # (left out, it is the YAML model above, whose class convolutions are fresh where the
            # checkpoint's class count differs from the YAML's 80).
            start["pretrained"] = str(weights)
        yolo.train(
            data=str(data),
            project=str(run_dir.parent),
            name=run_dir.name,
            exist_ok=True,
            device=device,
            **start,
            **train_args,
        )
    else:
        log.info("run in %s had already finished; collecting its outputs", run_dir)
    return summarise_run(run_dir, time.time() - started, device, state)


def summarise_run(run_dir: Path, seconds: float, device: str, state: str) -> dict[str, Any]:
    """Epochs run, best epoch and effective batch, read from the run's own files."""
    with open(run_dir / "results.csv", newline="") as stream:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(stream)]
    # Ultralytics 8.4 keeps the epoch with the best mAP50-95 as best.pt.
    fitness = [float(r["metrics/mAP50-95(B)"]) for r in rows]
    best = max(range(len(rows)), key=fitness.__getitem__)
    args = yaml.safe_load((run_dir / "args.yaml").read_text())
    return {
        "epochs_run": len(rows),
        "best_epoch": int(float(rows[best]["epoch"])),
        "best_fitness": fitness[best],
        "batch_used": args["batch"],
        "train_seconds": training_seconds([float(r["time"]) for r in rows]),
        "job_seconds": seconds,
        "device": device,
        "start": state,
        **network_size(run_dir / "weights" / "best.pt", args["imgsz"]),
    }


def network_size(weights: Path, imgsz: int) -> dict[str, Any]:
    """Parameters and GFLOPs of the trained network, fused for inference as Ultralytics' model tables give them.

    GFLOPs at 640 px compare with those tables; at the configuration's own
    size, with its measured latency.
    """
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import get_flops, get_num_params

    network = YOLO(str(weights)).fuse().model
    return {
        "parameters": get_num_params(network),
        "gflops_640": round(get_flops(network, 640), 2),
        "gflops": round(get_flops(network, imgsz), 3),
    }


def training_seconds(times: list[float]) -> float:
    """Total training time from results.csv's `time` column.

    The column is cumulative within one attempt and starts again from zero
    when a run resumes, so the attempts are added up.
    """
    total, previous = 0.0, 0.0
    for time_ in times:
        total += time_ - previous if time_ >= previous else time_
        previous = time_
    return total


def export_outputs(run_dir: Path, best: Path, results_csv: Path | None, summary_json: Path, summary: dict) -> None:
    """Copy the finished run's files to the declared outputs, summary last."""
    atomic_write_bytes(best, (run_dir / "weights" / "best.pt").read_bytes())
    if results_csv is not None:
        atomic_write_bytes(results_csv, (run_dir / "results.csv").read_bytes())
    atomic_write_json(summary_json, summary)


def cuda_peak_memory_mb(device: str, gpus: int) -> float | None:
    """What PyTorch's allocator reserved at most in this process: the figure a probe predicts.

    Only for one GPU trained in this process; DDP trains in processes of
    Ultralytics' own, and a CPU's memory is not the allocator's.
    """
    if device == "cpu" or gpus != 1:
        return None
    import torch

    return round(torch.cuda.max_memory_reserved() / 2**20, 1)


@dataclass(frozen=True)
class TrainingRequest:
    """What one training job is asked to do, in plain values (rule_job.run_training builds it)."""

    model: str
    data: Path
    run_dir: Path
    args: dict[str, Any]
    # What an earlier attempt must share to be resumed or reused: the
    # arguments, the data (full-size or a shrunk copy) and the starting weights.
    attempt_key: str
    weights: Path | None
    gpus: int
    threads: int
    out_of_memory_policy: str
    # A campaign training announces itself to the status command; a pretraining does not.
    announce: bool


def train_with_attempts(request: TrainingRequest, device: str, started: str, log: logging.Logger) -> dict[str, Any]:
    """Train on a leased device, resuming or retrying earlier attempts; every attempt recorded beside the run.

    Returns the training's summary (train.json), its attempts included.
    """
    run_dir = request.run_dir
    if request.announce:
        write_job_record(TrainingFolder.around(run_dir), device)
    train_args = dict(request.args)
    if train_args.get("workers") is None:  # the cores this job was given, per GPU process
        train_args["workers"] = max(1, request.threads // request.gpus)
    silent = record_silent_end(run_dir)
    if silent:
        log.info("the previous attempt %s", silent["error"])
    configured = train_args["batch"]
    earlier = earlier_attempts(run_dir, request.attempt_key)
    train_args["batch"] = batch_for_attempt(
        configured, earlier, request.gpus, request.out_of_memory_policy, run_dir, log
    )
    trained_at = earlier[-1]["batch"] if earlier else configured
    if request.out_of_memory_policy == "restart" and run_dir.exists() and trained_at != train_args["batch"]:
        reason = f"restarting at batch {train_args['batch']} (on_out_of_memory: restart)"
        _set_aside(run_dir, f"batch{trained_at}", reason, log)
    log.info("training %s on %s with %s", request.model, device, train_args)
    attempt = {
        "args_hash": request.attempt_key,
        "batch": train_args["batch"],
        "device": device,
        "started": started,
        "epochs_before": checkpoint_progress(run_dir)["epochs_done"],
    }
    with stderr_copied_to(stderr_copy(run_dir)) as stderr_offset:
        begin_attempt(run_dir, attempt, stderr_offset)
        try:
            with interrupts_raised():
                summary = train_model(
                    model=request.model,
                    data=request.data,
                    run_dir=run_dir,
                    train_args=train_args,
                    args_hash=request.attempt_key,
                    device=device,
                    weights=request.weights,
                    log=log,
                )
        except BaseException as error:
            said = out_of_memory_in(stderr_copy(run_dir), stderr_offset)
            failure = {
                "error": f"{type(error).__name__}: {error}"[:1000],
                "out_of_memory": memory_failure(error, said),
                **checkpoint_progress(run_dir),
            }
            record_attempt(run_dir, {**attempt, **failure})
            raise
    progress = checkpoint_progress(run_dir)
    attempts = record_attempt(run_dir, {**attempt, "error": None, "out_of_memory": False, **progress})
    summary.update(
        attempts=attempts,
        batch_configured=configured,
        batch_used=progress["batch_trained"] or summary["batch_used"],
        epochs_by_batch=epochs_by_batch(attempts),
        workers=train_args["workers"],
        host=socket.gethostname(),
        peak_memory_mb=cuda_peak_memory_mb(device, request.gpus),
    )
    summary["batch_reduced"] = any(int(b) < configured for b in summary["epochs_by_batch"]) or (
        summary["batch_used"] < configured
    )
    return summary
