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
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .io import atomic_write_bytes, atomic_write_json


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
    checkpoint = _read_checkpoint(last)
    if checkpoint is None:
        return "damaged", 0
    return _checkpoint_state(checkpoint)


def _read_checkpoint(path: Path) -> dict[str, Any] | None:
    """A checkpoint's contents; None where it is missing or cut short."""
    from ultralytics.utils.patches import torch_load

    if not path.is_file():
        return None
    try:
        return torch_load(path, map_location="cpu")
    except Exception:  # a truncated file fails in the zip reader or the unpickler
        return None


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
    checkpoint = _read_checkpoint(weights / "best.pt")
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
        if weights is not None:
            log.info("starting from pretrained weights %s", weights)
            yolo.load(str(weights))
        yolo.train(
            data=str(data),
            project=str(run_dir.parent),
            name=run_dir.name,
            exist_ok=True,
            device=device,
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


# How running out of memory reads when it is not a MemoryError or torch's
# OutOfMemoryError: the CPU allocator under a memory limit, and oneDNN, whose
# failed scratch allocations surface only as a failed primitive.
OUT_OF_MEMORY_MESSAGES = (
    "out of memory",
    "can't allocate memory",
    "cannot allocate memory",
    "could not create a primitive",
)


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(error).lower()
    return any(message in text for message in OUT_OF_MEMORY_MESSAGES)


def memory_failure(error: BaseException) -> bool | None:
    """Whether an attempt failed for want of memory; None where its error cannot tell.

    The workers of a multi-GPU (DDP) run fail in processes of their own: the
    trainer only sees their exit status.
    """
    if is_out_of_memory(error):
        return True
    if isinstance(error, subprocess.CalledProcessError):
        return None
    return False


class Interrupted(BaseException):
    """The job was told to stop: scancel, a preemption, a closed SSH session."""


@contextmanager
def interrupts_raised() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into Interrupted, so that the attempt is recorded before the job ends.

    A signal already ignored stays ignored: under `nohup`, SIGHUP must not
    end the training.
    """

    def interrupt(number, frame):
        raise Interrupted(signal.Signals(number).name)

    previous = {
        number: signal.signal(number, interrupt)
        for number in (signal.SIGTERM, signal.SIGHUP)
        if signal.getsignal(number) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _attempts_file(run_dir: Path) -> Path:
    """The run's attempt history, kept beside it across Snakemake's retries and reruns."""
    return run_dir.with_name(f"{run_dir.name}.attempts.jsonl")


def _attempt_under_way(run_dir: Path) -> Path:
    """The attempt now running; still there when the next one starts, it ended without a word."""
    return run_dir.with_name(f"{run_dir.name}.attempt.json")


def earlier_attempts(run_dir: Path, args_hash: str) -> list[dict[str, Any]]:
    """The attempts made with the same arguments, data and weights, oldest first."""
    history = _attempts_file(run_dir)
    if not history.is_file():
        return []
    attempts = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
    return [a for a in attempts if a["args_hash"] == args_hash]


def record_silent_end(run_dir: Path) -> None:
    """Record the attempt still noted as under way: it ended without a word."""
    under_way = _attempt_under_way(run_dir)
    if under_way.is_file():
        silent = {
            "error": "ended without a word: killed (SIGKILL, such as the kernel's out-of-memory killer), "
            "aborted, or lost with its node",
            "out_of_memory": None,
        }
        record_attempt(run_dir, {**json.loads(under_way.read_text()), **silent})


def begin_attempt(run_dir: Path, attempt: dict[str, Any]) -> None:
    """Note an attempt as under way until record_attempt records how it ended."""
    atomic_write_json(_attempt_under_way(run_dir), attempt)


def record_attempt(run_dir: Path, attempt: dict[str, Any]) -> list[dict[str, Any]]:
    """Append an attempt to the run's history; return its attempts, for the training summary."""
    with open(_attempts_file(run_dir), "a") as stream:
        stream.write(json.dumps(attempt, sort_keys=True) + "\n")
    _attempt_under_way(run_dir).unlink(missing_ok=True)
    return earlier_attempts(run_dir, attempt["args_hash"])


def batch_after_memory_failures(configured: int, attempts: list[dict[str, Any]], smallest: int = 1) -> int:
    """The batch to train with: half the smallest batch that ran out of memory, else the configured one.

    Attempts that may have run out of memory count too: those that ended
    without a word (the kernel's out-of-memory killer, an allocator's abort)
    and DDP runs whose workers failed unseen. An attempt that was interrupted
    (scancel, a preemption, a closed SSH session) or failed for another
    reason is resumed with the batch it had: a smaller batch would change the
    training for nothing. `smallest` is one image per GPU.
    """
    failed = [a["batch"] for a in attempts if a.get("error") and a.get("out_of_memory") is not False]
    if not failed:
        return configured
    return max(smallest, min(configured, min(failed) // 2))


def run_training_job(job) -> None:
    """Entry point shared by the train and pretrain rules (`job` is the snakemake object)."""
    from .configurations import stable_hash
    from .io import job_logger
    from .jobs import leased_device
    from .provenance import dataset_hash, file_hash, now, write_job_provenance
    from .status import write_job_record
    from .yolo_env import prepare_ultralytics

    log = job_logger(job.log[0])
    started = now()
    run_dir = Path(job.params.run_dir)
    prepare_ultralytics(run_dir.parent / f".ultralytics_{run_dir.name}")
    weights = job.input.get("weights")
    with leased_device(
        job, log, monitor_csv=run_dir.parent / "monitor.csv", tensorboard_dir=run_dir / "monitor"
    ) as lease:
        device = lease.ultralytics_device()
        if job.rule == "train":
            write_job_record(run_dir.parent, device)
        train_args = dict(job.params.args)
        # What an earlier attempt must share to be resumed or reused: the
        # arguments, the data and the starting weights.
        args_hash = stable_hash(
            {
                "args": job.params.get("args_hash") or "",
                "data": dataset_hash(Path(job.input.manifest), [Path(job.input[s]) for s in ("train", "val", "test")])
                if "manifest" in job.input.keys()
                else file_hash(Path(job.input.dataset)),
                "weights": file_hash(Path(weights)) if weights else None,
            }
        )
        record_silent_end(run_dir)
        batch = batch_after_memory_failures(
            train_args["batch"], earlier_attempts(run_dir, args_hash), smallest=job.resources.get("gpu", 1) or 1
        )
        if batch != train_args["batch"]:
            log.info(
                "batch reduced from %s to %s: an earlier attempt ran out of memory or may have (%s)",
                train_args["batch"],
                batch,
                _attempts_file(run_dir),
            )
        train_args["batch"] = batch
        log.info("training %s on %s with %s", job.params.model, device, train_args)
        attempt = {"args_hash": args_hash, "batch": batch, "device": device, "started": started}
        begin_attempt(run_dir, attempt)
        try:
            with interrupts_raised():
                summary = train_model(
                    model=job.params.model,
                    data=Path(job.input.dataset),
                    run_dir=run_dir,
                    train_args=train_args,
                    args_hash=args_hash,
                    device=device,
                    weights=Path(weights) if weights else None,
                    log=log,
                )
        except BaseException as error:
            failure = {"error": f"{type(error).__name__}: {error}"[:1000], "out_of_memory": memory_failure(error)}
            record_attempt(run_dir, {**attempt, **failure})
            raise
        summary["attempts"] = record_attempt(run_dir, {**attempt, "error": None, "out_of_memory": False})
    results_csv = job.output.get("results")
    export_outputs(
        run_dir,
        Path(job.output.weights),
        Path(results_csv) if results_csv else None,
        Path(job.output.summary),
        summary,
    )
    write_job_provenance(job, Path(job.output.provenance), device, started, weights=Path(weights) if weights else None)
    log.info("finished: %s", summary)
