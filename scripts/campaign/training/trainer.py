"""Train one configuration with Ultralytics, resuming an interrupted attempt.

The Ultralytics run folder (`run/`, holding last.pt and the TensorBoard log)
is not a declared Snakemake output, so a failed or killed job leaves it in
place for the next attempt to resume from. The declared outputs (best.pt,
results.csv, train.json) are copied out atomically only once training has
finished.
"""

from __future__ import annotations

import json
import logging
import os
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
    how_it_ended,
    interrupts_raised,
    make_room_for_record,
    memory_failure,
    read_checkpoint,
    record_attempt,
    record_silent_end,
    stderr_copy,
    write_job_record,
)
from .disk_space import NoSpaceError, free_reserve, space_reserved
from .epoch_table import read_epoch_table
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
    text = results_csv.read_text()
    if text and not text.endswith("\n"):  # a row cut short (a kill, a full disk): that epoch is trained again
        log.info("dropping the last result row of %s, cut short: %r", results_csv, text.rsplit("\n", 1)[-1])
        atomic_write_bytes(results_csv, text[: text.rfind("\n") + 1].encode())
    read_epoch_table(results_csv)  # a damaged table is named here, not misread below
    lines = results_csv.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if line.strip() and int(float(line.split(",", 1)[0])) <= last_epoch]
    if len(kept) != len(lines):
        log.info("dropping %d result row(s) after epoch %d, trained again now", len(lines) - len(kept), last_epoch)
        atomic_write_bytes(results_csv, "".join(kept).encode())


def _set_aside(run_dir: Path, label: str, reason: str, log: logging.Logger) -> None:
    """Keep an earlier attempt that cannot be resumed as run.<label>-<time>, for a person to look at."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = run_dir.with_name(f"{run_dir.name}.{label}-{stamp}")
    run_dir.rename(target)
    log.info("%s: kept the interrupted attempt aside as %s and starting afresh", reason, target)


def start_state(run_dir: Path, args_hash: str, log: logging.Logger) -> tuple[str, int]:
    """How the next attempt starts ('fresh' | 'resume' | 'finished', last epoch done).

    A run trained with other arguments, data or weights, or whose checkpoints
    are both cut short, is set aside first (kept for a person to look at).
    """
    state, last_epoch = _run_state(run_dir, args_hash)
    if state == "stale":
        _set_aside(run_dir, "stale", "arguments, data or weights changed since the interrupted attempt", log)
        return "fresh", 0
    if state == "damaged":
        return _recover_damaged_run(run_dir, log)
    return state, last_epoch


def train_model(
    model: str,
    data: Path,
    run_dir: Path,
    train_args: dict[str, Any],
    args_hash: str,
    device: str,
    weights: Path | None,
    log: logging.Logger,
    start: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """Train (or resume) into run_dir; return a summary of the finished run.

    `start` is start_state's answer where the caller has asked already.
    """
    from ultralytics import YOLO

    run_dir = run_dir.resolve()
    state, last_epoch = start or start_state(run_dir, args_hash, log)
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
        from_weights: dict[str, Any] = {}
        if weights is not None:
            log.info("starting from pretrained weights %s", weights)
            yolo.load(str(weights))
            # The trainer rebuilds the network for the dataset's classes and fills it from `pretrained`:
            # named, that is the checkpoint itself, so a head trained on the same classes carries over
            # (left out, it is the YAML model above, whose class convolutions are fresh where the
            # checkpoint's class count differs from the YAML's 80).
            from_weights["pretrained"] = str(weights)
        yolo.train(
            data=str(data),
            project=str(run_dir.parent),
            name=run_dir.name,
            exist_ok=True,
            device=device,
            **from_weights,
            **train_args,
        )
    else:
        log.info("run in %s had already finished; collecting its outputs", run_dir)
        end_of_training_plots(run_dir, data, train_args, device, log)
    return summarise_run(run_dir, time.time() - started, device, state)


def end_of_training_plots(run_dir: Path, data: Path, train_args: dict[str, Any], device: str, log) -> None:
    """Make the plots Ultralytics makes as a training ends, where a run finished without them.

    A job that ends between the last epoch and the plots (killed, a full disk)
    leaves a finished run that the next job only collects: its curves of every
    epoch (results.png) and its final validation's plots (confusion matrix,
    precision-recall curves) are made here, as Ultralytics would have.
    """
    if train_args.get("plots") is False:  # asked for no plots
        return
    if not (run_dir / "results.png").is_file():
        from ultralytics.utils.plotting import plot_results

        log.info("drawing the run's epoch curves, which its training did not get to")
        plot_results(file=run_dir / "results.csv")
    if not (run_dir / "confusion_matrix.png").is_file():
        from ultralytics import YOLO

        log.info("validating best.pt with plots, as the end of its training would have")
        YOLO(str(run_dir / "weights" / "best.pt")).val(
            data=str(data),
            imgsz=train_args["imgsz"],
            batch=train_args["batch"],
            device=device.split(",")[0],  # one device for a validation, also after a DDP training
            plots=True,
            project=str(run_dir.parent),
            name=run_dir.name,
            exist_ok=True,
            workers=0,
        )


def summarise_run(run_dir: Path, seconds: float, device: str, state: str) -> dict[str, Any]:
    """Epochs run, best epoch and effective batch, read from the run's own files."""
    rows = read_epoch_table(run_dir / "results.csv")
    # Ultralytics 8.4 keeps the epoch with the best mAP50-95 as best.pt.
    fitness = [r["metrics/mAP50-95(B)"] for r in rows]
    best = max(range(len(rows)), key=fitness.__getitem__)
    args = yaml.safe_load((run_dir / "args.yaml").read_text())
    return {
        "epochs_run": len(rows),
        "best_epoch": int(float(rows[best]["epoch"])),
        "best_fitness": fitness[best],
        "batch_used": args["batch"],
        "train_seconds": training_seconds([r["time"] for r in rows]),
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

    Returns the training's summary (train.json), its attempts included. A run
    that had already finished is only collected: that is no attempt.
    """
    run_dir = request.run_dir
    folder = TrainingFolder.around(run_dir)
    if request.announce:
        write_job_record(folder, device)
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
    state, last_epoch = start_state(run_dir.resolve(), request.attempt_key, log)
    training = dict(
        model=request.model,
        data=request.data,
        run_dir=run_dir,
        train_args=train_args,
        args_hash=request.attempt_key,
        device=device,
        weights=request.weights,
        log=log,
        start=(state, last_epoch),
    )
    if state == "finished":
        summary = train_model(**training)
        attempts = earlier
    else:
        summary, attempts = _attempt(training, state, last_epoch, device, started, folder, log)
    progress = checkpoint_progress(run_dir)
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


def _attempt(
    training: dict[str, Any], state: str, last_epoch: int, device: str, started: str, folder: TrainingFolder, log
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One attempt at training (fresh or resumed), recorded however it ends; the summary and the attempts."""
    run_dir = training["run_dir"]
    log.info("training %s on %s with %s", training["model"], device, training["train_args"])
    attempt = {
        "args_hash": training["args_hash"],
        "batch": training["train_args"]["batch"],
        "device": device,
        "started": started,
        # Epochs this attempt starts from: 0 for a fresh run, whatever an earlier run had.
        "epochs_before": last_epoch if state == "resume" else 0,
    }
    with stderr_copied_to(stderr_copy(run_dir)) as stderr_offset, space_reserved(folder.space_reserve):
        log.info("attempt started on %s (process %d): %s", socket.gethostname(), os.getpid(), attempt)
        make_room_for_record(run_dir)
        begin_attempt(run_dir, attempt, stderr_offset)
        try:
            with interrupts_raised():
                summary = train_model(**training)
        except BaseException as error:
            free_reserve(folder.space_reserve)  # room for the record and the log lines below
            said = out_of_memory_in(stderr_copy(run_dir), stderr_offset)
            failure = {
                "error": f"{type(error).__name__}: {error}"[:1000],
                "out_of_memory": memory_failure(error, said),
                **how_it_ended(error, said, run_dir),
                **checkpoint_progress(run_dir),
            }
            log.error("the attempt ended: %s (%s)", failure["ended"], failure.get("space") or failure["error"])
            record_attempt(run_dir, {**attempt, **failure})
            if failure["ended"] == "no space":
                raise NoSpaceError(failure["space"]) from error
            raise
    finished = {"error": None, "out_of_memory": False, "ended": "finished", **checkpoint_progress(run_dir)}
    return summary, record_attempt(run_dir, {**attempt, **finished})
