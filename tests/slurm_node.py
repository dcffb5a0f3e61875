"""A real single-node SLURM cluster (Debian's slurm-wlm) for the tests, started and stopped here.

The node declares 4 GPUs backed by stand-in device files and more CPUs and
memory than the machine has (`SlurmdParameters=config_overrides`), so that
the GPUs are what limits how many jobs run at once. The configuration goes
where every SLURM command looks first, /etc/slurm, because Snakemake's job
step executor clears SLURM_* variables (SLURM_CONF among them) before its
nested `srun`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_DIR = Path("/etc/slurm")
MARKER = "# written by the campaign's SLURM test node"
DAEMONS = ("slurmctld", "slurmd")
COMMANDS = (*DAEMONS, "sbatch", "squeue", "scontrol", "sinfo")
GPUS = 4


def unavailable_reason() -> str | None:
    """Why this machine cannot host the test node, or None when it can."""
    missing = [command for command in COMMANDS if shutil.which(command) is None]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} missing): install Debian's slurm-wlm"
    if os.geteuid() != 0:
        return "the SLURM test node runs its daemons as root"
    config = CONFIG_DIR / "slurm.conf"
    if config.exists() and MARKER not in config.read_text(errors="replace"):
        return f"{config} belongs to another SLURM installation; the test leaves it alone"
    return None


def _stand_in_gpu(path: Path) -> bool:
    """A character device like /dev/null, so that slurmd accepts it and sets CUDA_VISIBLE_DEVICES.

    Where device nodes cannot be made, a plain file: SLURM then still counts
    the GPUs but exports no device indices. Returns whether a device was made.
    """
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        return True
    except OSError:
        path.touch()
        return False


@dataclass
class SlurmNode:
    root: Path
    name: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    pids: dict[str, int] = field(default_factory=dict)
    device_files: bool = False  # whether SLURM gets device indices to export

    def start(self) -> SlurmNode:
        for folder in ("state", "spool", "gpus"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self.device_files = all([_stand_in_gpu(self.root / "gpus" / f"gpu{index}") for index in range(GPUS)])
        CONFIG_DIR.mkdir(parents=True, exist_ok=True)
        (CONFIG_DIR / "slurm.conf").write_text(self._slurm_conf())
        (CONFIG_DIR / "gres.conf").write_text(
            f"{MARKER}\nNodeName={self.name} Name=gpu File={self.root}/gpus/gpu[0-{GPUS - 1}]\n"
        )
        for daemon in DAEMONS:
            extra = ["-N", self.name] if daemon == "slurmd" else []
            subprocess.run([daemon, *extra], check=True, capture_output=True, timeout=30)
            self.pids[daemon] = self._read_pid(daemon)
        self._wait_until_idle()
        return self

    def stop(self) -> None:
        """Stop both daemons by their own pids and remove the configuration."""
        for pid in reversed(list(self.pids.values())):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.2)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        for name in ("slurm.conf", "gres.conf"):
            path = CONFIG_DIR / name
            if path.exists() and MARKER in path.read_text(errors="replace"):
                path.unlink()

    def _slurm_conf(self) -> str:
        root = self.root
        return f"""{MARKER}
ClusterName=campaign-test
SlurmctldHost={self.name}(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/none
CredType=cred/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
JobCompType=jobcomp/filetxt
JobCompLoc={root}/jobcomp.txt
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
NodeName={self.name} NodeAddr=127.0.0.1 CPUs=32 RealMemory=64000 Gres=gpu:{GPUS} State=UNKNOWN
PartitionName=gpu Nodes={self.name} Default=YES MaxTime=INFINITE State=UP
"""

    def _read_pid(self, daemon: str) -> int:
        pid_file = self.root / f"{daemon}.pid"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if pid_file.is_file() and pid_file.read_text().strip():
                return int(pid_file.read_text())
            time.sleep(0.1)
        raise RuntimeError(f"{daemon} wrote no pid file; see {self.root}/{daemon}.log")

    def _wait_until_idle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            result = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True)
            state = result.stdout.strip()
            if state == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"SLURM node not idle after {timeout} s (state {state!r}); see {self.root}/*.log")


def kill_leftovers(folder: Path) -> list[int]:
    """Kill every process still working in `folder`; their pids.

    With proctrack/linuxproc, SLURM finds a job's processes by parentage, so
    a job step's process that outlived its parent (here: the first attempt of
    the training that scancel ends) can escape the cancel on this test node,
    where a real cluster's proctrack/cgroup would end it.
    """
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd == str(folder) or cwd.startswith(f"{folder}/"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except ProcessLookupError:
                pass
    return killed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class JobSample:
    time: float
    job_id: int
    state: str
    comment: str
    gpus: int  # GPUs allocated to the job
    gpu_indices: tuple[int, ...]  # which ones, where SLURM knows the devices


class JobWatcher:
    """Samples every SLURM job's state and the GPU indices it holds, from `scontrol`, in a thread."""

    def __init__(self, interval: float = 0.25):
        self.interval = interval
        self.samples: list[JobSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> JobWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            result = subprocess.run(["scontrol", "show", "job", "-d", "-o"], capture_output=True, text=True)
            now = time.monotonic()
            for line in result.stdout.splitlines():
                sample = parse_job_line(now, line)
                if sample is not None:
                    self.samples.append(sample)
            self._stop.wait(self.interval)

    def max_gpus_in_use(self) -> int:
        by_time: dict[float, int] = {}
        for sample in self.samples:
            if sample.state == "RUNNING":
                by_time[sample.time] = by_time.get(sample.time, 0) + sample.gpus
        return max(by_time.values(), default=0)

    def shared_gpus(self) -> list[tuple[float, int]]:
        """(time, index) wherever two running jobs held the same GPU."""
        held: dict[tuple[float, int], int] = {}
        for sample in self.samples:
            if sample.state == "RUNNING":
                for index in sample.gpu_indices:
                    held[(sample.time, index)] = held.get((sample.time, index), 0) + 1
        return [key for key, count in held.items() if count > 1]


def parse_job_line(now: float, line: str) -> JobSample | None:
    fields = dict(re.findall(r"(\w+)=(\S*)", line))
    if "JobId" not in fields:
        return None
    count = re.search(r"\bJOB_GRES=gpu(?::\w+)?:(\d+)", line)
    # While running, -d also shows the node's devices: GRES=gpu:2(IDX:0-1) or gpu:3(IDX:0,2-3).
    indices = re.search(r"\bGRES=gpu(?::\w+)?:\d+\(IDX:([\d,-]+)\)", line)
    return JobSample(
        time=now,
        job_id=int(fields["JobId"]),
        state=fields.get("JobState", ""),
        comment=fields.get("Comment", ""),
        gpus=int(count.group(1)) if count else 0,
        gpu_indices=tuple(_expand(indices.group(1))) if indices else (),
    )


def _expand(ranges: str) -> list[int]:
    indices: list[int] = []
    for part in ranges.split(","):
        low, _, high = part.partition("-")
        indices.extend(range(int(low), int(high or low) + 1))
    return indices
