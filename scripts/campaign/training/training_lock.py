"""One trainer per run: a lock on the training folder, held by the job that trains it.

Snakemake's own locks keep two runs of the workflow apart only until someone
runs `snakemake --unlock` while a campaign is live (the advice Snakemake
prints when a second run is refused): then two jobs would resume the same
run from the same checkpoint, both append epochs to one results.csv, and both
report success. Each training job therefore takes an exclusive lock on
`<run>.lock` in its folder before it reads or writes anything there. The
kernel releases it when the holder ends, however it ends (as the GPU leases
are released), and it holds across hosts that share the folder over NFS
(Linux takes flock there as a POSIX lock). A second job for the same
configuration says who holds it and waits; once it gets the lock, it finds
the run finished and only collects its outputs.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from campaign.gpus.leases import open_lock_file
from campaign.training.run_folder import TrainingFolder


def holder_of(folder: TrainingFolder) -> dict:
    """Who holds (or last held) the run's lock, as it wrote itself into the lock file; {} if unknown."""
    try:
        return json.loads(folder.trainer_lock.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def describe_holder(holder: dict) -> str:
    if not holder:
        return "another job (it has not said who it is yet)"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"{holder.get('job') or 'a job'} on host {holder.get('host')} (process {holder.get('pid')}) since {since}"


@contextmanager
def one_trainer(folder: TrainingFolder, job: str, log: logging.Logger) -> Iterator[None]:
    """Hold the run's lock for the block; wait, saying who holds it, while another job does."""
    folder.path.mkdir(parents=True, exist_ok=True)
    descriptor = open_lock_file(folder.trainer_lock)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning(
                "%s is being trained by %s; this job waits for it to end and never trains the run beside it "
                "(then it collects the finished run, or resumes it if that job was stopped)",
                folder.run,
                describe_holder(holder_of(folder)),
            )
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        record = {"host": socket.gethostname(), "pid": os.getpid(), "job": job, "since": time.time()}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (json.dumps(record) + "\n").encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
