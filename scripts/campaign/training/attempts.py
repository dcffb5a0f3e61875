"""A training's attempts: how each ended, and what the next one does about it (the batch policy).

Each attempt is a line of `run.attempts.jsonl` beside the run (kept across
Snakemake's retries and reruns): its batch, device, epochs, and how it ended.
Only evidence of memory exhaustion (an allocator error, the kernel's
out-of-memory killer, a worker's stderr) makes the next attempt smaller; an
interruption (scancel, a preemption, a closed SSH session) resumes as it was.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from campaign.core.io import atomic_write_json
from campaign.core.records import DamagedRecord, damage_of, read_json_lines, read_json_record, set_aside
from campaign.training.disk_space import ran_out_of_space, space_needed
from campaign.training.memory_evidence import mentions_out_of_memory, oom_kill_counts, oom_kills_since, out_of_memory_in
from campaign.training.run_folder import TrainingFolder, checkpoint_progress


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


def how_it_ended(error: BaseException, stderr_says: str | None, run_dir: Path) -> dict[str, Any]:
    """How a failed attempt ended, for its record: a signal, no space, out of memory, or an exception."""

    if isinstance(error, Interrupted):
        return {"ended": f"signal {error}"}
    if isinstance(error, KeyboardInterrupt):
        return {"ended": "signal SIGINT"}
    if ran_out_of_space(error, run_dir):
        return {"ended": "no space", **space_needed(run_dir)}
    if memory_failure(error, stderr_says):
        return {"ended": "out of memory"}
    return {"ended": "exception"}


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


def write_job_record(folder: TrainingFolder, device: str) -> None:
    """Mark a training as started by this process: host, pid and device (read by the status command)."""
    record = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(), "device": device}
    atomic_write_json(folder.job_record, record)


def earlier_attempts(folder: TrainingFolder, args_hash: str) -> list[dict[str, Any]]:
    """The attempts made with the same arguments, data and weights, oldest first."""
    history = folder.attempts
    if not history.is_file():
        return []
    attempts = read_json_lines(history, required=("args_hash",))
    return [a for a in attempts if a["args_hash"] == args_hash]


def set_aside_damaged_history(folder: TrainingFolder, log: logging.Logger) -> None:
    """A damaged attempt history or under-way note (a copy cut short) is set aside and said; training goes on.

    Without it a memory failure before may be met again at the configured batch, and is then recorded anew.
    """
    try:
        if folder.attempts.is_file():
            read_json_lines(folder.attempts, required=("args_hash",))
    except DamagedRecord as damage:
        log.warning("%s; the training goes on without its earlier attempts", set_aside(folder.attempts, damage.problem))
    problem = damage_of(folder.attempt_under_way) if folder.attempt_under_way.is_file() else None
    if problem:
        log.warning("%s; the attempt it noted is not recorded", set_aside(folder.attempt_under_way, problem))


def record_silent_end(folder: TrainingFolder) -> dict[str, Any] | None:
    """Record the attempt still noted as under way, which ended without a word; return the record.

    It ran out of memory only on evidence: the kernel's out-of-memory killer
    counted a kill in its cgroup since it started, or its stderr says so (an
    allocator that aborted). A plain `kill -9`, a lost node or an SSH
    session's hard end is no such evidence.
    """
    under_way = folder.attempt_under_way
    if not under_way.is_file():
        return None
    attempt = read_json_record(under_way)
    kills = oom_kills_since(attempt.get("oom_kills") or [])
    said = out_of_memory_in(folder.stderr_copy, attempt.get("stderr_offset", 0))
    if kills > 0:
        error = f"ended without a word: the kernel's out-of-memory killer counted {kills} kill(s) in its cgroup"
    elif said:
        error = f"ended without a word after its stderr said: {said[:300]}"
    else:
        error = "ended without a word (killed, or lost with its node), with no sign of memory exhaustion"
    # Where it got to: the checkpoint it left is what this attempt finds.
    silent = {**attempt, "error": error, "out_of_memory": kills > 0 or said is not None, **checkpoint_progress(folder)}
    record_attempt(folder, silent)
    return silent


def begin_attempt(folder: TrainingFolder, attempt: dict[str, Any], stderr_offset: int = 0) -> None:
    """Note an attempt as under way until record_attempt records how it ended.

    The note keeps what the next attempt needs to tell a silent death by
    memory exhaustion from any other: the cgroups' out-of-memory kill counts
    now, and where this attempt's part of the stderr copy starts.
    """
    evidence = {"oom_kills": oom_kill_counts(), "stderr_offset": stderr_offset}
    atomic_write_json(folder.attempt_under_way, {**attempt, **evidence})


# Blank lines kept at the end of the attempt history while an attempt runs:
# its record is written over them, into space the file already holds, so
# that even a disk that filled up meanwhile takes it.
RECORD_ROOM = 64 * 1024


def make_room_for_record(folder: TrainingFolder) -> None:
    """Add RECORD_ROOM blank bytes at the end of the history (readers skip blank lines)."""
    history = folder.attempts
    history.parent.mkdir(parents=True, exist_ok=True)
    with open(history, "ab") as stream:
        stream.write(b"\n" * RECORD_ROOM)
        stream.flush()
        os.fsync(stream.fileno())


def record_attempt(folder: TrainingFolder, attempt: dict[str, Any]) -> list[dict[str, Any]]:
    """Add an attempt to the run's history, over the room made for it; return its attempts, for the summary."""
    line = (json.dumps(attempt, sort_keys=True) + "\n").encode()
    history = folder.attempts
    with open(history, "r+b" if history.exists() else "w+b") as stream:
        records = stream.read().rstrip(b"\n")
        stream.seek(len(records) + 1 if records else 0)
        stream.write(line)
        stream.truncate()
    folder.attempt_under_way.unlink(missing_ok=True)
    return earlier_attempts(folder, attempt["args_hash"])


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
    configured: int,
    attempts: list[dict[str, Any]],
    smallest: int,
    policy: str,
    folder: TrainingFolder,
    log: logging.Logger,
) -> int:
    """The batch of the next attempt under training.on_out_of_memory (halve, restart or fail).

    With `restart`, the caller sets the run trained at a larger batch aside.
    """
    batch = batch_after_memory_failures(configured, attempts, smallest)
    if batch == configured:
        return batch
    if policy == "fail":
        raise OutOfMemoryPolicyError(
            f"an earlier attempt ran out of memory at batch {min(a['batch'] for a in attempts)} "
            f"({folder.attempts}), and training.on_out_of_memory is `fail`. "
            "`campaign plan --probe` gives the largest batch that fits the device; "
            "lower `batch`, or set `gpus: 2` to spread it over two GPUs"
        )
    history = folder.attempts
    log.info("batch reduced from %s to %s: an earlier attempt ran out of memory (%s)", configured, batch, history)
    return batch


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
