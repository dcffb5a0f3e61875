"""Who runs the workflow in this folder: one record per Snakemake run, with its host, process, locks and heartbeat.

Snakemake's own lock files (`.snakemake/locks/N.input.lock`, `N.output.lock`)
list the files a run reads and writes, but not who holds them: after a
server is lost, nothing says whether its locks are stale. Each run that
executes jobs (dry-runs do not) therefore writes
`.snakemake/campaign-runs/<host>-<pid>.json` when it starts (Snakemake's
`onstart`, when its locks exist): host, process, the lock files it holds,
the configurations it works on, and a heartbeat refreshed every
HEARTBEAT_SECONDS; the record goes when the run ends. A record whose
heartbeat is older than the staleness threshold belongs to a run that is
gone (its server lost power, its session was killed), and so do its locks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from campaign.core.io import atomic_write_json

RUNS_DIR = Path(".snakemake") / "campaign-runs"
LOCKS_DIR = Path(".snakemake") / "locks"
# How often a run says it lives (tests shorten it through the environment).
HEARTBEAT_SECONDS = float(os.environ.get("DETECTION_CAMPAIGN_HEARTBEAT_SECONDS", "30"))


@dataclass
class RunRecord:
    host: str
    pid: int
    started: float
    heartbeat: float
    locks: list[str] = field(default_factory=list)  # lock files, relative to the workflow folder
    configs: list[str] = field(default_factory=list)
    what: str = ""  # the run as a person would name it: "shard 1/2", "the whole campaign"
    cores: int = 0  # Snakemake's --cores
    gpus: int = 0  # GPUs its `--resources gpu=` gives it (0: a CPU-only run)
    path: Path | None = None

    def alive(self, stale_after: float, now: float | None = None) -> bool:
        """On this host: its process exists. On another: its heartbeat is recent."""
        if self.host == socket.gethostname():
            return process_exists(self.pid)
        return (now if now is not None else time.time()) - self.heartbeat <= stale_after

    def describe(self, now: float | None = None) -> str:
        ago = (now if now is not None else time.time()) - self.heartbeat
        beat = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.heartbeat))
        return f"{self.what} on {self.host} (process {self.pid}), last heartbeat {beat}, {ago:.0f} s ago"


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def record_path(root: Path = Path(".")) -> Path:
    return root / RUNS_DIR / f"{socket.gethostname()}-{os.getpid()}.json"


def start_run(
    locks: list[str],
    configs: list[str],
    what: str,
    cores: int = 0,
    gpus: int = 0,
    interval: float = HEARTBEAT_SECONDS,
) -> Path:
    """Record this run and keep its heartbeat going from a daemon thread until the process ends."""
    path = record_path()
    started = time.time()
    record = {"host": socket.gethostname(), "pid": os.getpid(), "started": started, "heartbeat": started}
    record.update(locks=sorted(locks), configs=sorted(configs), what=what, cores=cores, gpus=gpus)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, record)

    def beat() -> None:
        while True:
            time.sleep(interval)
            if not path.exists():  # the run ended (end_run), or someone took its work over
                return
            atomic_write_json(path, {**record, "heartbeat": time.time()})

    threading.Thread(target=beat, name="campaign-run-heartbeat", daemon=True).start()
    return path


def end_run() -> None:
    record_path().unlink(missing_ok=True)


def other_live_runs_notice(stale_after: float = 600) -> str | None:
    """A word on the other live runs of this folder, before this one tries to lock it; None if there are none.

    Snakemake refuses a run whose files another run has locked, and suggests
    `--unlock`, which would remove the live run's locks too.
    """
    me = (socket.gethostname(), os.getpid())
    live = [run for run in read_runs() if (run.host, run.pid) != me and run.alive(stale_after)]
    if not live:
        return None
    listed = "; ".join(run.describe() for run in live)
    return (
        f"Another run of the workflow is live in this folder: {listed}. If Snakemake refuses to lock the folder "
        "for this run, do not use `snakemake --unlock` (it removes that run's locks too): wait for it, run "
        "other configurations (`--config shard=I/N` or `only=[...]`), or see `campaign status`; "
        "`campaign takeover --unlock-stale` removes only the locks of runs that are gone."
    )


# A stop asked of this run (SIGTERM, Ctrl-C), for the message at its end.
_stop_requested: list[str] = []


def notice_stop_requests() -> None:
    """Note SIGTERM and Ctrl-C before Snakemake's own handling of them (called from onstart, after it set hers).

    Snakemake ends a run it was asked to stop with "At least one job did not
    complete successfully" even where every job it ran succeeded; the note
    lets the run's end say what really happened (explain_stop).
    """
    for number in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(number)

        def noted(signum, frame, previous=previous):
            _stop_requested.append(signal.Signals(signum).name)
            if callable(previous):
                previous(signum, frame)
            elif signum == signal.SIGINT:
                raise KeyboardInterrupt

        signal.signal(number, noted)


def explain_stop() -> str | None:
    """What a stopped run did, where a stop was asked; None where it was not."""
    if not _stop_requested:
        return None
    if _stop_requested[0] == "SIGTERM":
        return (
            "Stopped on request (SIGTERM): the jobs running then were let finish and no job failed; Snakemake "
            "says below that some did not complete because it did not start them. Run the same command to go on."
        )
    return (
        "Stopped on request (Ctrl-C): the running jobs were stopped; each training recorded the interruption "
        "and resumes from its last saved epoch when the same command runs again."
    )


def read_runs(root: Path = Path(".")) -> list[RunRecord]:
    runs = []
    for path in sorted((root / RUNS_DIR).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # being replaced this instant, or gone
        runs.append(RunRecord(**data, path=path))
    return runs


def jobs_at_a_time(runs: list[RunRecord], stale_after: float) -> tuple[int, int] | None:
    """(trainings, jobs after them) the live runs of this folder run at a time; None where none is live.

    A training takes a GPU (on a CPU-only run: every core, so one at a time); the jobs after the
    trainings take a GPU each too, or a core each on a CPU-only run.
    """
    live = [run for run in runs if run.alive(stale_after) and run.cores]
    if not live:
        return None
    trainings = sum(run.gpus or 1 for run in live)
    return trainings, sum(min(run.gpus, run.cores) if run.gpus else run.cores for run in live)


@dataclass
class LockPair:
    """One Snakemake run's locks: N.input.lock and N.output.lock, and the output files they name."""

    number: str
    files: list[Path]
    outputs: list[str]

    def configurations(self, names: list[str]) -> set[str]:
        """Which of the configurations this run writes files of (results/<stage>/<config>/...)."""
        return {name for name in names for output in self.outputs if f"/{name}/" in output or f"/{name}." in output}


def lock_pairs(root: Path = Path(".")) -> list[LockPair]:
    pairs: dict[str, LockPair] = {}
    for path in sorted((root / LOCKS_DIR).glob("*.lock")):
        number, kind = path.name.split(".")[:2]
        pair = pairs.setdefault(number, LockPair(number, [], []))
        pair.files.append(path)
        if kind == "output":
            pair.outputs = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return list(pairs.values())


def owner_of(pair: LockPair, runs: list[RunRecord]) -> RunRecord | None:
    names = {str(path.relative_to(path.parents[2])) for path in pair.files}
    return next((run for run in runs if names & set(run.locks)), None)
