"""Train one configuration with Ultralytics, resuming an interrupted attempt, and summarise the run.

The Ultralytics run folder (`run/`, holding last.pt and the TensorBoard log)
is not a declared Snakemake output, so a failed or killed job leaves it in
place for the next attempt to resume from. The declared outputs (best.pt,
results.csv, train.json) are copied out atomically only once training has
finished.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from campaign.core.epoch_table import read_epoch_table
from campaign.core.io import atomic_write_bytes, atomic_write_json
from campaign.training.attempts import (
    batch_for_attempt,
    begin_attempt,
    earlier_attempts,
    epochs_by_batch,
    how_it_ended,
    interrupts_raised,
    make_room_for_record,
    memory_failure,
    record_attempt,
    record_silent_end,
    write_job_record,
)
from campaign.training.disk_space import NoSpaceError, free_reserve, space_reserved
from campaign.training.memory_evidence import out_of_memory_in, stderr_copied_to
from campaign.training.run_folder import (
    TrainingFolder,
    checkpoint_progress,
    drop_epochs_after,
    set_aside,
    start_state,
)


def train_model(
    model: str,
    data: Path,
    folder: TrainingFolder,
    train_args: dict[str, Any],
    args_hash: str,
    device: str,
    weights: Path | None,
    log: logging.Logger,
    start: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """Train (or resume) into the folder's run; return a summary of the finished run.

    `start` is start_state's answer where the caller has asked already.
    """
    from ultralytics import YOLO

    folder = TrainingFolder(folder.path.resolve(), folder.run_name)  # Ultralytics is given absolute paths
    run_dir = folder.run
    state, last_epoch = start or start_state(folder, args_hash, log)
    started = time.time()
    if state == "resume":
        log.info("resuming the interrupted run in %s after epoch %d", run_dir, last_epoch)
        drop_epochs_after(folder.epochs, last_epoch, log)
        YOLO(str(folder.last_checkpoint)).train(resume=True, device=device, data=str(data), batch=train_args["batch"])
    elif state == "fresh":
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        atomic_write_json(folder.args_file, {"args_hash": args_hash, "model": model, "args": train_args})
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
    folder: TrainingFolder
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
    folder = request.folder
    if request.announce:
        write_job_record(folder, device)
    train_args = dict(request.args)
    if train_args.get("workers") is None:  # the cores this job was given, per GPU process
        train_args["workers"] = max(1, request.threads // request.gpus)
    silent = record_silent_end(folder)
    if silent:
        log.info("the previous attempt %s", silent["error"])
    configured = train_args["batch"]
    earlier = earlier_attempts(folder, request.attempt_key)
    train_args["batch"] = batch_for_attempt(
        configured, earlier, request.gpus, request.out_of_memory_policy, folder, log
    )
    trained_at = earlier[-1]["batch"] if earlier else configured
    if request.out_of_memory_policy == "restart" and folder.run.exists() and trained_at != train_args["batch"]:
        reason = f"restarting at batch {train_args['batch']} (on_out_of_memory: restart)"
        set_aside(folder, f"batch{trained_at}", reason, log)
    state, last_epoch = start_state(folder, request.attempt_key, log)
    training = dict(
        model=request.model,
        data=request.data,
        folder=folder,
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
    progress = checkpoint_progress(folder)
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
    log.info("training %s on %s with %s", training["model"], device, training["train_args"])
    attempt = {
        "args_hash": training["args_hash"],
        "batch": training["train_args"]["batch"],
        "device": device,
        "started": started,
        # Epochs this attempt starts from: 0 for a fresh run, whatever an earlier run had.
        "epochs_before": last_epoch if state == "resume" else 0,
    }
    with stderr_copied_to(folder.stderr_copy) as stderr_offset, space_reserved(folder.space_reserve):
        log.info("attempt started on %s (process %d): %s", socket.gethostname(), os.getpid(), attempt)
        make_room_for_record(folder)
        begin_attempt(folder, attempt, stderr_offset)
        try:
            with interrupts_raised():
                summary = train_model(**training)
        except BaseException as error:
            free_reserve(folder.space_reserve)  # room for the record and the log lines below
            said = out_of_memory_in(folder.stderr_copy, stderr_offset)
            failure = {
                "error": f"{type(error).__name__}: {error}"[:1000],
                "out_of_memory": memory_failure(error, said),
                **how_it_ended(error, said, folder.run),
                **checkpoint_progress(folder),
            }
            log.error("the attempt ended: %s (%s)", failure["ended"], failure.get("space") or failure["error"])
            record_attempt(folder, {**attempt, **failure})
            if failure["ended"] == "no space":
                raise NoSpaceError(failure["space"]) from error
            raise
    finished = {"error": None, "out_of_memory": False, "ended": "finished", **checkpoint_progress(folder)}
    return summary, record_attempt(folder, {**attempt, **finished})
