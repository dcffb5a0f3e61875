"""Evidence that a training attempt ran out of memory, for attempts that could not say so themselves.

An attempt killed by the kernel's out-of-memory killer, or aborted by an
allocator in C++, ends without a Python exception to record. Two traces
outlive it and are read by the next attempt:

- the kernel counts out-of-memory kills per cgroup (cgroup v2
  `memory.events`, v1 `memory.oom_control`, both `oom_kill`); the attempt
  records the counts of its cgroup and every ancestor when it starts, and
  the next attempt compares;
- what the attempt wrote to stderr, C++ abort messages of its own and of
  its DDP workers included, is copied to a file (`tee`, a separate process,
  so that nothing is lost when the attempt dies).

Any other silent end (`kill -9`, a closed SSH session's hard kill, a lost
node) is not memory, and the next attempt keeps the batch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")

# How running out of memory reads in an error or on stderr when it is not a
# MemoryError or torch's OutOfMemoryError: CUDA, the CPU allocator under a
# memory limit, oneDNN (its failed scratch allocations surface only as a
# failed primitive), C++ code that aborted on std::bad_alloc, and Rust code
# (Polars, in Ultralytics' trainer) that aborted on a failed allocation.
OUT_OF_MEMORY_MESSAGES = (
    "out of memory",
    "can't allocate memory",
    "cannot allocate memory",
    "could not create a primitive",
    "std::bad_alloc",
    "cublas_status_alloc_failed",
    "memory allocation of",  # Rust: "memory allocation of 24 bytes failed"
)


def mentions_out_of_memory(text: str) -> bool:
    text = text.lower()
    return any(message in text for message in OUT_OF_MEMORY_MESSAGES)


def _counter_files(root: Path, proc_cgroup: str) -> list[Path]:
    """The oom_kill counter files of this process's memory cgroup and its ancestors, innermost first."""
    files = []
    for line in proc_cgroup.splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and controllers == "":  # cgroup v2
            base, name = root if (root / "cgroup.controllers").exists() else root / "unified", "memory.events"
        elif "memory" in controllers.split(","):  # cgroup v1
            base, name = root / "memory", "memory.oom_control"
        else:
            continue
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts), -1, -1):
            files.append(base.joinpath(*parts[:depth], name))
    return files


def _oom_kill_count(path: Path) -> int | None:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def oom_kill_counts(root: Path = CGROUP_ROOT, proc_cgroup: str | None = None) -> list[tuple[str, int]]:
    """(counter file, out-of-memory kills so far) for this process's cgroups, innermost first."""
    if proc_cgroup is None:
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
        except OSError:
            return []
    counts = [(str(path), _oom_kill_count(path)) for path in _counter_files(root, proc_cgroup)]
    return [(path, count) for path, count in counts if count is not None]


def oom_kills_since(recorded: list[tuple[str, int]]) -> int:
    """Kills counted since `recorded`, in the innermost of its cgroups that still exists.

    A scheduler may have removed the dead attempt's own cgroup; where the
    kernel counts kills hierarchically (cgroup v2) its parent counts the
    kill too, and perhaps a neighbour's, which errs towards a smaller batch,
    never towards another out-of-memory death.
    """
    for path, before in recorded:
        now = _oom_kill_count(Path(path))
        if now is not None:
            return now - before
    return 0


@contextmanager
def stderr_copied_to(path: Path) -> Iterator[int]:
    """Copy everything written to file descriptor 2 (this process and its children) into `path`.

    Yields the file's size before the copy starts, the offset of this
    attempt's part. `tee` runs in a session of its own so that a signal for
    the job (Ctrl-C, scancel) does not end it before it has written all.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    offset = path.stat().st_size if path.exists() else 0
    sys.stderr.flush()
    original = os.dup(2)
    tee = subprocess.Popen(["tee", "-a", str(path)], stdin=subprocess.PIPE, stdout=original, start_new_session=True)
    os.dup2(tee.stdin.fileno(), 2)
    try:
        yield offset
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)
        os.close(original)
        tee.stdin.close()
        tee.wait()


def out_of_memory_in(path: Path, offset: int) -> str | None:
    """The first line after `offset` of a stderr copy that says memory ran out; None if none does."""
    try:
        with open(path, "rb") as stream:
            stream.seek(offset)
            text = stream.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    return next((line.strip() for line in text.splitlines() if mentions_out_of_memory(line)), None)
