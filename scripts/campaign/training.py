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
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .io import atomic_write_bytes, atomic_write_json
from .memory_evidence import mentions_out_of_memory, oom_kill_counts, oom_kills_since, out_of_memory_in


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


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return True
    return mentions_out_of_memory(str(error))


def memory_failure(error: BaseException, stderr_says: str | None = None) -> bool:
    """Whether an attempt failed for want of memory, on evidence only.

    The workers of a multi-GPU (DDP) run fail in processes of their own: the
    trainer only sees their exit status, so what they wrote on stderr
    (`stderr_says`, the line that reports memory exhaustion) decides.
    """
    if is_out_of_memory(error):
        return True
    return isinstance(error, subprocess.CalledProcessError) and stderr_says is not None


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


def stderr_copy(run_dir: Path) -> Path:
    """Everything the attempts wrote on stderr (workers included), kept beside the run."""
    return run_dir.with_name(f"{run_dir.name}.stderr.log")


def earlier_attempts(run_dir: Path, args_hash: str) -> list[dict[str, Any]]:
    """The attempts made with the same arguments, data and weights, oldest first."""
    history = _attempts_file(run_dir)
    if not history.is_file():
        return []
    attempts = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
    return [a for a in attempts if a["args_hash"] == args_hash]


def record_silent_end(run_dir: Path) -> dict[str, Any] | None:
    """Record the attempt still noted as under way, which ended without a word; return the record.

    It ran out of memory only on evidence: the kernel's out-of-memory killer
    counted a kill in its cgroup since it started, or its stderr says so (an
    allocator that aborted). A plain `kill -9`, a lost node or an SSH
    session's hard end is no such evidence.
    """
    under_way = _attempt_under_way(run_dir)
    if not under_way.is_file():
        return None
    attempt = json.loads(under_way.read_text())
    kills = oom_kills_since(attempt.get("oom_kills") or [])
    said = out_of_memory_in(stderr_copy(run_dir), attempt.get("stderr_offset", 0))
    if kills > 0:
        error = f"ended without a word: the kernel's out-of-memory killer counted {kills} kill(s) in its cgroup"
    elif said:
        error = f"ended without a word after its stderr said: {said[:300]}"
    else:
        error = "ended without a word (killed, or lost with its node), with no sign of memory exhaustion"
    # Where it got to: the checkpoint it left is what this attempt finds.
    silent = {**attempt, "error": error, "out_of_memory": kills > 0 or said is not None, **checkpoint_progress(run_dir)}
    record_attempt(run_dir, silent)
    return silent


def begin_attempt(run_dir: Path, attempt: dict[str, Any], stderr_offset: int = 0) -> None:
    """Note an attempt as under way until record_attempt records how it ended.

    The note keeps what the next attempt needs to tell a silent death by
    memory exhaustion from any other: the cgroups' out-of-memory kill counts
    now, and where this attempt's part of the stderr copy starts.
    """
    evidence = {"oom_kills": oom_kill_counts(), "stderr_offset": stderr_offset}
    atomic_write_json(_attempt_under_way(run_dir), {**attempt, **evidence})


def record_attempt(run_dir: Path, attempt: dict[str, Any]) -> list[dict[str, Any]]:
    """Append an attempt to the run's history; return its attempts, for the training summary."""
    with open(_attempts_file(run_dir), "a") as stream:
        stream.write(json.dumps(attempt, sort_keys=True) + "\n")
    _attempt_under_way(run_dir).unlink(missing_ok=True)
    return earlier_attempts(run_dir, attempt["args_hash"])


def batch_after_memory_failures(configured: int, attempts: list[dict[str, Any]], smallest: int = 1) -> int:
    """The batch to train with: half the smallest batch that ran out of memory, else the configured one.

    Only evidence counts (`out_of_memory` true: an allocator error, the
    kernel's out-of-memory killer, a worker's stderr). An attempt that was
    killed, interrupted (scancel, a preemption, a closed SSH session) or
    failed for another reason is resumed with the batch it had: a smaller
    batch would change the training for nothing. `smallest` is one image per GPU.
    """
    failed = [a["batch"] for a in attempts if a.get("error") and a.get("out_of_memory") is True]
    if not failed:
        return configured
    return max(smallest, min(configured, min(failed) // 2))


class OutOfMemoryPolicyError(RuntimeError):
    """The training ran out of memory and training.on_out_of_memory is `fail`."""


def batch_for_attempt(
    configured: int, attempts: list[dict[str, Any]], smallest: int, policy: str, run_dir: Path, log: logging.Logger
) -> int:
    """The batch of the next attempt under training.on_out_of_memory (halve, restart or fail)."""
    batch = batch_after_memory_failures(configured, attempts, smallest)
    if batch == configured:
        return batch
    if policy == "fail":
        raise OutOfMemoryPolicyError(
            f"an earlier attempt ran out of memory at batch {min(a['batch'] for a in attempts)} "
            f"({_attempts_file(run_dir)}), and training.on_out_of_memory is `fail`. "
            "`python scripts/campaign/plan.py --probe` gives the largest batch that fits the device; "
            "lower `batch`, or set `gpus: 2` to spread it over two GPUs"
        )
    previous = attempts[-1]["batch"]
    if policy == "restart" and run_dir.exists() and previous != batch:
        _set_aside(run_dir, f"batch{previous}", f"restarting at batch {batch} (on_out_of_memory: restart)", log)
    history = _attempts_file(run_dir)
    log.info("batch reduced from %s to %s: an earlier attempt ran out of memory (%s)", configured, batch, history)
    return batch


def checkpoint_progress(run_dir: Path) -> dict[str, Any]:
    """Epochs the run's last checkpoint holds and the batch the trainer really used.

    The trainer's own batch is in the checkpoint's `train_args`: Ultralytics
    halves it there when a GPU runs out of memory during the first epoch.
    """
    weights = run_dir / "weights"
    checkpoint = _read_checkpoint(weights / "last.pt") or _read_checkpoint(weights / "best.pt")
    if checkpoint is None:
        return {"epochs_done": 0, "batch_trained": None}
    epoch = checkpoint.get("epoch", -1)
    train_args = checkpoint.get("train_args") or {}
    epochs_done = train_args.get("epochs", 0) if epoch == -1 else epoch + 1
    if epoch == -1 and (run_dir / "results.csv").is_file():  # finished; early stopping ends before `epochs`
        epochs_done = len((run_dir / "results.csv").read_text().strip().splitlines()) - 1
    return {"epochs_done": epochs_done, "batch_trained": train_args.get("batch")}


def epochs_by_batch(attempts: list[dict[str, Any]]) -> dict[str, int]:
    """Epochs of the finished run trained at each batch size, from its attempts' checkpoints.

    The run is the last attempt and those before it back to the one that
    started it afresh (`epochs_before` 0); each added `epochs_done -
    epochs_before` epochs at the batch its checkpoint says it trained with.
    """
    lineage = []
    for attempt in reversed(attempts):
        lineage.append(attempt)
        if not attempt.get("epochs_before"):
            break
    trained: dict[str, int] = {}
    for attempt in lineage:
        added = (attempt.get("epochs_done") or 0) - (attempt.get("epochs_before") or 0)
        if added > 0 and attempt.get("batch_trained") is not None:
            key = str(attempt["batch_trained"])
            trained[key] = trained.get(key, 0) + added
    return trained


def run_training_job(job) -> None:
    """Entry point shared by the train and pretrain rules (`job` is the snakemake object)."""
    from .configurations import stable_hash
    from .io import job_logger
    from .jobs import leased_device
    from .memory_evidence import stderr_copied_to
    from .provenance import dataset_hash, file_hash, now, write_job_provenance
    from .status import write_job_record
    from .yolo_env import prepare_ultralytics

    log = job_logger(job.log[0])
    started = now()
    run_dir = Path(job.params.run_dir)
    prepare_ultralytics(run_dir.parent / f".ultralytics_{run_dir.name}")
    weights = job.input.get("weights")
    gpus = int(job.resources.get("gpu", 1) or 1)
    # The monitor's TensorBoard log lives beside the run, not in it: a fresh attempt replaces the run folder.
    with leased_device(
        job,
        log,
        monitor_csv=run_dir.parent / "monitor.csv",
        tensorboard_dir=run_dir.with_name(f"{run_dir.name}.monitor"),
    ) as lease:
        device = lease.ultralytics_device()
        if job.rule == "train":
            write_job_record(run_dir.parent, device)
        train_args = dict(job.params.args)
        if train_args.get("workers") is None:  # the cores this job was given, per GPU process
            train_args["workers"] = max(1, job.threads // gpus)
        # What an earlier attempt must share to be resumed or reused: the
        # arguments, the data (full-size or a shrunk copy) and the starting weights.
        args_hash = stable_hash(
            {
                "args": job.params.get("args_hash") or "",
                "data": dataset_hash(Path(job.input.manifest), [Path(job.input[s]) for s in ("train", "val", "test")])
                if "manifest" in job.input.keys()
                else file_hash(Path(job.input.dataset)),
                "data_file": str(job.input.dataset),
                "weights": file_hash(Path(weights)) if weights else None,
            }
        )
        silent = record_silent_end(run_dir)
        if silent:
            log.info("the previous attempt %s", silent["error"])
        configured = train_args["batch"]
        policy = job.config.get("training", {}).get("on_out_of_memory", "halve")
        train_args["batch"] = batch_for_attempt(
            configured, earlier_attempts(run_dir, args_hash), gpus, policy, run_dir, log
        )
        log.info("training %s on %s with %s", job.params.model, device, train_args)
        attempt = {
            "args_hash": args_hash,
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
        )
        summary["batch_reduced"] = any(int(b) < configured for b in summary["epochs_by_batch"]) or (
            summary["batch_used"] < configured
        )
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
