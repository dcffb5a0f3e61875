"""Lease whole GPUs to jobs, so that no two jobs ever share a device.

Snakemake's `gpu` resource only counts GPUs; it does not say which ones a job
may use, and it knows nothing of other campaigns or other users on the same
server. A lease is an exclusive `flock` on one lock file per device in a
machine-wide folder: the kernel releases it when the holder exits or is
killed (SIGKILL included), so a crashed job never leaves a device blocked.

Among the devices nobody holds, a job takes those with the most free memory
(read through NVML), skipping devices that foreign processes already load
beyond a threshold. Inside a SLURM allocation the devices SLURM gave are
used as they are. With no GPU the job runs on the CPU, unless the config
requires a GPU.

The folder is shared by every user of the server, so what another user may
have put in it is not trusted: the folder itself must belong to root or to
the user running the campaign (world-writable only with the sticky bit), and
a lock file is opened without following links and used only if it is a
regular file with one name, so no lease ever writes through a name another
user planted.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaign.core.configurations import section_defaults
from campaign.gpus.compatibility import Driver, ServerCheck, TorchBuild, check_server


class NoDeviceError(RuntimeError):
    """A GPU is required by the config but none is available."""


class UnsafeLeaseFolderError(RuntimeError):
    """The lease folder, or a file in it, could be turned against the user running the campaign."""


def _owner(uid: int) -> str:
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def check_lease_folder(lock_dir: Path) -> None:
    """Refuse a lease folder that another user controls; its checks are made on the folder itself, not a link."""
    create = f"ask an administrator to create it once: `sudo install -d -m 1777 {lock_dir}`"
    info = os.lstat(lock_dir)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafeLeaseFolderError(f"gpu.lock_dir: {lock_dir} is not a plain folder (a link or a file); {create}")
    if info.st_uid not in (0, os.geteuid()):
        raise UnsafeLeaseFolderError(
            f"gpu.lock_dir: {lock_dir} belongs to {_owner(info.st_uid)}, who could replace its lock files; "
            f"{create}, or choose a folder of your own in gpu.lock_dir"
        )
    if info.st_mode & (stat.S_IWOTH | stat.S_IWGRP) and not info.st_mode & stat.S_ISVTX:
        raise UnsafeLeaseFolderError(
            f"gpu.lock_dir: {lock_dir} is writable by others without the sticky bit, so anyone may replace its "
            f"lock files; set it (`chmod +t {lock_dir}`) or {create}"
        )


def prepare_lease_folder(lock_dir: Path) -> None:
    """Create the folder on first use, shared like /tmp (mode 1777), then check it (also when it existed)."""
    try:
        lock_dir.mkdir(parents=True)
    except FileExistsError:
        pass
    else:
        lock_dir.chmod(0o1777)  # just made by us, so nobody could have put a link in its place
    check_lease_folder(lock_dir)


@dataclass(frozen=True)
class Device:
    index: int  # NVML / physical index, as CUDA_VISIBLE_DEVICES expects
    name: str
    total_mb: int
    free_mb: int
    utilization: int = 0  # percent, from processes already on the device
    capability: tuple[int, int] | None = None  # CUDA compute capability (NVML); None where unknown


@dataclass
class LeaseOptions:
    lock_dir: Path
    min_free_mb: int = 2000
    max_utilization: int = 30
    poll_seconds: float = 10.0
    require_gpu: bool = False
    declared: list[dict[str, Any]] | None = None  # devices named in the config (tests, no NVML)
    # Packing: a one-GPU job whose memory need is known shares a device with
    # at most max_share holders in all, while their needs fit its memory.
    pack: bool = False
    max_share: int = 1
    capacity_mb: float | None = None  # memory a device counts as (gpu.emulate_memory_mb), else its own

    @classmethod
    def from_config(cls, gpu: dict[str, Any]) -> LeaseOptions:
        """From the config's `gpu` section; what it leaves out takes the schema's default."""

        gpu = {**section_defaults("gpu"), **gpu}
        declared = gpu["devices"]
        return cls(
            lock_dir=Path(gpu["lock_dir"]),
            min_free_mb=gpu["min_free_mb"],
            max_utilization=gpu["max_utilization"],
            poll_seconds=gpu["poll_seconds"],
            require_gpu=gpu["require"],
            declared=None if declared in (None, "auto") else list(declared),
            pack=gpu["pack"],
            max_share=gpu["max_share"],
            capacity_mb=gpu["emulate_memory_mb"],
        )


@dataclass
class Lease:
    devices: list[Device] = field(default_factory=list)
    source: str = "cpu"  # "nvml", "declared", "slurm" or "cpu"
    share_mb: float | None = None  # a shared device: the memory this job was admitted with, its cap
    # Why a job that asked for GPUs runs on the CPU (torch cannot use the server's GPUs); None otherwise.
    fallback: str | None = None

    def ultralytics_device(self) -> str:
        """Ultralytics' device argument: leased devices are renumbered from 0 inside the job.

        Devices declared in the config (to test leasing without a GPU) still
        compute on the CPU when torch sees no GPU.
        """
        import torch

        if not self.devices or not torch.cuda.is_available():
            return "cpu"
        return ",".join(str(i) for i in range(min(len(self.devices), torch.cuda.device_count())))


def nvml_devices() -> list[Device]:
    """Every GPU NVML sees, with free memory and current utilisation; [] without a driver."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            devices.append(
                Device(
                    index=index,
                    name=pynvml.nvmlDeviceGetName(handle),
                    total_mb=memory.total // 2**20,
                    free_mb=memory.free // 2**20,
                    utilization=pynvml.nvmlDeviceGetUtilizationRates(handle).gpu,
                    capability=tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle)),
                )
            )
        return devices
    finally:
        pynvml.nvmlShutdown()


def nvml_driver() -> Driver | None:
    """The server's NVIDIA driver and the newest CUDA it runs; None without a driver."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()  # 12020 for CUDA 12.2
        return Driver(version=str(pynvml.nvmlSystemGetDriverVersion()), cuda=(cuda // 1000, cuda % 1000 // 10))
    finally:
        pynvml.nvmlShutdown()


def check_this_server(devices: list[Device] | None = None) -> ServerCheck:
    """Every GPU NVML sees (or `devices`) against the installed torch build."""
    return check_server(nvml_devices() if devices is None else devices, nvml_driver(), TorchBuild.installed())


def cpu_fallback(check: ServerCheck, require_gpu: bool, log: logging.Logger) -> str:
    """No GPU the job could have can train: stop under gpu.require, else one warning, and the reason to record."""
    if require_gpu:
        raise NoDeviceError(f"gpu.require is set, but torch cannot train on this server's GPUs: {check.problems()}")
    reason = f"trained on the CPU: torch cannot use this server's GPUs: {check.problems()}"
    log.warning(reason)
    return reason


def declared_devices(declared: list[dict[str, Any]]) -> list[Device]:
    return [
        Device(
            index=int(entry["index"]),
            name=entry.get("name", f"declared-{entry['index']}"),
            total_mb=int(entry.get("memory_mb", 8192)),
            free_mb=int(entry.get("free_mb", entry.get("memory_mb", 8192))),
            utilization=int(entry.get("utilization", 0)),
        )
        for entry in declared
    ]


def slurm_devices() -> list[Device] | None:
    """The devices of this SLURM job, or None outside SLURM."""
    if "SLURM_JOB_ID" not in os.environ:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    indices = [int(i) for i in visible.split(",") if i.strip().isdigit()]
    return [Device(index=i, name=f"slurm-gpu-{i}", total_mb=0, free_mb=0) for i in indices]


def open_lock_file(path: Path) -> int:
    """A descriptor of the lock file, created if absent, never through a link another user planted.

    O_NOFOLLOW refuses a symbolic link; O_NONBLOCK keeps a planted FIFO from
    blocking the open; the checks on the open file refuse a hard link to
    someone's file (two names) and anything that is not a regular file.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    what = "remove it (only the lease code writes there) and run again"
    try:
        descriptor = os.open(path, flags, 0o666)
    except OSError as error:
        if os.path.islink(path):
            raise UnsafeLeaseFolderError(f"lease file {path} is a symbolic link, not a lock file; {what}") from error
        raise
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(descriptor)
        kind = "not a regular file" if not stat.S_ISREG(info.st_mode) else f"a file with {info.st_nlink} names"
        raise UnsafeLeaseFolderError(f"lease file {path} is {kind}: another file could be overwritten; {what}")
    return descriptor


def _try_lock_file(path: Path) -> int | None:
    """An exclusive lock on `path` if nobody holds it now: its descriptor, else None."""
    descriptor = open_lock_file(path)
    try:
        os.fchmod(descriptor, 0o666)  # despite the umask: other users lease the same devices
    except PermissionError:
        pass  # another user's file, already shared
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


def _share_files(lock_dir: Path, device: Device) -> list[Path]:
    """The device's share files that exist: one per holder a packing campaign ever admitted at once."""
    return sorted(lock_dir.glob(f"gpu{device.index}.share*.lock"))


def _try_lock(lock_dir: Path, device: Device) -> list[int] | None:
    """The whole device: its lock file, held for the job, and every share file (no sharer may hold one)."""
    descriptor = _try_lock_file(lock_dir / f"gpu{device.index}.lock")
    if descriptor is None:
        return None
    held = [descriptor]
    for path in _share_files(lock_dir, device):
        share = _try_lock_file(path)
        if share is None:  # a sharer is on it
            _release(held)
            return None
        held.append(share)
    return held


def _try_share(lock_dir: Path, device: Device, need_mb: float, options: LeaseOptions, job: str) -> int | None:
    """A share of the device for a job needing `need_mb`, if its holders' needs and this one fit and a share is free.

    The device's lock file serves as the admission's mutex, held only while
    deciding: a whole-device holder keeps it for its job, so no sharer is
    admitted beside it. Each share file holds its holder's record (need
    included); the kernel frees the share of a holder that dies.
    """
    mutex = _try_lock_file(lock_dir / f"gpu{device.index}.lock")
    if mutex is None:
        return None
    try:
        needs, free_share = [], None
        for index in range(max(options.max_share, len(_share_files(lock_dir, device)))):
            path = lock_dir / f"gpu{device.index}.share{index}.lock"
            share = _try_lock_file(path)
            if share is None:
                needs.append(_recorded_need(path, device))
            elif free_share is None and index < options.max_share:
                free_share = share
            else:
                _release([share])
        capacity = min(device.total_mb, options.capacity_mb or device.total_mb)
        # Memory others use beyond what the holders here were admitted with (NVML's view; 0 when declared).
        foreign = max(0.0, (device.total_mb - device.free_mb) - sum(needs))
        fits = sum(needs) + need_mb + foreign <= capacity
        if free_share is None or not fits or len(needs) >= options.max_share:
            if free_share is not None:
                _release([free_share])
            return None
        _record(free_share, device, job, need_mb)  # before the next admission reads it
        return free_share
    finally:
        _release([mutex])


def _recorded_need(path: Path, device: Device) -> float:
    """What a share's holder was admitted with; a record that cannot be read counts as the whole device."""
    try:
        return float(json.loads(path.read_text())["need_mb"])
    except (OSError, ValueError, KeyError, TypeError):
        return float(device.total_mb)


def _record(descriptor: int, device: Device, job: str, need_mb: float | None = None) -> None:
    """Write who holds the lease into its lock file, for people and the status command."""
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "job": job,
        "since": time.time(),
        "device": device.index,
    }
    if need_mb is not None:
        record["need_mb"] = need_mb
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, (json.dumps(record) + "\n").encode(), 0)


def _release(descriptors: list[int]) -> None:
    for descriptor in descriptors:
        os.ftruncate(descriptor, 0)
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


@contextmanager
def lease_devices(
    count: int,
    options: LeaseOptions,
    job: str = "",
    log: logging.Logger | None = None,
    need_mb: float | None = None,
) -> Iterator[Lease]:
    """Hold `count` whole devices for the duration of the block, or a share of one.

    With packing on (options.pack), a one-GPU job whose memory need is known
    (`need_mb`) takes a share of a device instead (see _try_share); any other
    job takes whole devices, which no sharer holds. Sets CUDA_VISIBLE_DEVICES
    to the leased devices, numbered as NVML numbers them
    (CUDA_DEVICE_ORDER=PCI_BUS_ID). Yields a CPU lease when count is 0 or the
    machine has no GPU (an error if a GPU is required).
    """
    log = log or logging.getLogger(__name__)
    if count == 0:
        yield Lease()
        return
    in_slurm = slurm_devices()
    if in_slurm is not None and options.declared is None:
        if not in_slurm and options.require_gpu:
            raise NoDeviceError("gpu.require is set, but this SLURM job was given no GPU (ask for --gres=gpu:N)")
        log.info("inside SLURM job %s: using its devices %s", os.environ["SLURM_JOB_ID"], [d.index for d in in_slurm])
        if not in_slurm:
            yield Lease()
            return
        given = {d.index for d in in_slurm}
        # SLURM chose the devices: all of them must be usable (NVML's facts where it sees them, else torch's).
        check = check_this_server([d for d in nvml_devices() if d.index in given] or in_slurm)
        if check.usable != {gpu.index for gpu in check.gpus}:
            yield Lease(fallback=cpu_fallback(check, options.require_gpu, log))
            return
        yield Lease(devices=in_slurm, source="slurm")
        return

    source = "declared" if options.declared is not None else "nvml"
    usable: set[int] | None = None  # NVML's devices that the installed torch can train on

    def candidates() -> list[Device]:
        if options.declared is not None:
            return declared_devices(options.declared)
        return [d for d in nvml_devices() if usable is None or d.index in usable]

    devices_now = candidates()  # each look asks NVML afresh: once here, then once per try
    if not devices_now:
        if options.require_gpu:
            raise NoDeviceError("gpu.require is set, but no GPU is visible (NVML found none); run on a GPU machine")
        log.info("no GPU found: running on the CPU")
        yield Lease()
        return
    if source == "nvml":
        check = check_this_server(devices_now)
        usable = check.usable
        if not usable:
            yield Lease(fallback=cpu_fallback(check, options.require_gpu, log))
            return
        if len(usable) < len(devices_now):
            log.warning("GPU(s) that torch cannot train on are not leased: %s", check.problems())
            devices_now = [d for d in devices_now if d.index in usable]
    large_enough = [d for d in devices_now if d.total_mb >= options.min_free_mb or d.total_mb == 0]
    if count > len(large_enough):
        raise NoDeviceError(
            f"the job asks for {count} GPU(s) but this machine has {len(large_enough)} with at least "
            f"gpu.min_free_mb={options.min_free_mb} MB of memory; lower `gpus` or gpu.min_free_mb"
        )

    shared = options.pack and need_mb is not None and count == 1
    if shared and need_mb > min(d.total_mb for d in large_enough):
        raise NoDeviceError(f"the job needs {need_mb:.0f} MB, more than any device here has; it cannot share one")
    prepare_lease_folder(options.lock_dir)
    last_message = 0.0
    while True:
        held = _take(devices_now, count, options, need_mb if shared else None, job)
        if held is not None:
            break
        if time.monotonic() - last_message > 60:
            what = f"a share of {need_mb:.0f} MB of a GPU" if shared else f"{count} GPU(s)"
            log.info(
                "waiting for %s: of %d, none free enough (>= %d MB free and <= %d%% load, not leased%s)",
                what,
                len(devices_now),
                options.min_free_mb,
                options.max_utilization,
                f", at most {options.max_share} jobs a device" if shared else "",
            )
            last_message = time.monotonic()
        time.sleep(options.poll_seconds)
        devices_now = candidates()

    devices = [device for device, _ in held]
    if not shared:  # a share was recorded as it was admitted
        for device, descriptors in held:
            _record(descriptors[0], device, job)
    previous = {name: os.environ.get(name) for name in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}
    if source == "nvml":
        # NVML numbers devices by PCI bus; CUDA, by default, fastest first. On a
        # server with mixed cards the same index would name two GPUs.
        os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(d.index) for d in devices)
    log.info(
        "leased GPU(s) %s%s: %s",
        [d.index for d in devices],
        f" (a share: {need_mb:.0f} MB)" if shared else "",
        ", ".join(f"{d.name} {d.free_mb} MB free" for d in devices),
    )
    try:
        yield Lease(devices=devices, source=source, share_mb=need_mb if shared else None)
    finally:
        _release([descriptor for _, descriptors in held for descriptor in descriptors])
        if source == "nvml":
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _take(
    devices: list[Device], count: int, options: LeaseOptions, need_mb: float | None, job: str
) -> list[tuple[Device, list[int]]] | None:
    """One try: `count` whole devices, or a share of one where need_mb is given; None where they are not free now.

    Whole devices: those with the most free memory first, skipping devices
    that others load. A share: the device with the least free memory first
    where it fits, so that the emptiest stay free for larger needs.
    """
    if need_mb is not None:
        for device in sorted(devices, key=lambda d: (d.free_mb, d.index)):
            share = _try_share(options.lock_dir, device, need_mb, options, job)
            if share is not None:
                return [(device, [share])]
        return None
    usable = [d for d in devices if d.free_mb >= options.min_free_mb and d.utilization <= options.max_utilization]
    usable.sort(key=lambda d: (-d.free_mb, d.index))
    held: list[tuple[Device, list[int]]] = []
    for device in usable:
        descriptors = _try_lock(options.lock_dir, device)
        if descriptors is not None:
            held.append((device, descriptors))
            if len(held) == count:
                return held
    _release([descriptor for _, descriptors in held for descriptor in descriptors])
    return None
