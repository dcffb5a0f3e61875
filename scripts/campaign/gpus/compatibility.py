"""Can the installed torch train on this server's GPUs? Asked before a device is leased.

NVML seeing a GPU does not mean torch can compute on it. Two things must
fit, and a teaching lab's older servers often miss one:

- the driver: a torch built for CUDA 13 needs a driver that runs CUDA 13
  (the 580 series or newer); one built for CUDA 12 runs on any driver of
  CUDA 12 (525 and newer), older minor versions included (CUDA's minor
  version compatibility). Otherwise `torch.cuda.is_available()` is false and
  Ultralytics would quietly train on the CPU.
- the card: torch carries compiled kernels for a list of architectures
  (`sm_75`, ..., and PTX as `compute_XY`). A card of compute capability X.Y
  runs kernels built for X.y with y <= Y (same major), and PTX built for any
  capability up to X.Y; otherwise its first kernel fails ("no kernel image is
  available for execution on the device"), hours into a queued campaign.

Each of the project's locks (`LOCKS`) is one torch build; where the installed
one cannot train on a GPU, the verdict names the lock that can, or says that
none can and what to change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from campaign.core.provenance import torch_architectures


@dataclass(frozen=True)
class TorchBuild:
    """The installed torch: its version, the CUDA it was built for, the kernels it carries."""

    version: str
    cuda: str | None  # "13.0"; None for a CPU build
    architectures: tuple[str, ...] = ()  # "sm_75", ..., "compute_90"
    cuda_available: bool = False  # torch's own answer on this machine

    @classmethod
    def installed(cls) -> TorchBuild:
        import torch

        return cls(torch.__version__, torch.version.cuda, tuple(torch_architectures()), torch.cuda.is_available())

    @property
    def cuda_major(self) -> int | None:
        return int(self.cuda.split(".")[0]) if self.cuda else None

    def describe(self) -> str:
        if not self.cuda:
            return f"torch {self.version} (a CPU build, no CUDA)"
        return (
            f"torch {self.version} (CUDA {self.cuda}; kernels for {' '.join(self.architectures) or 'no architecture'})"
        )

    def record(self) -> dict:
        """What a result records of the build that made it."""
        return {"torch": self.version, "torch_cuda": self.cuda, "torch_architectures": list(self.architectures)}


@dataclass(frozen=True)
class Driver:
    """The NVIDIA driver of the server: its version and the newest CUDA it runs."""

    version: str  # "535.183.01"
    cuda: tuple[int, int]  # (12, 2)

    @property
    def cuda_text(self) -> str:
        return f"{self.cuda[0]}.{self.cuda[1]}"


@dataclass(frozen=True)
class Lock:
    """One of the project's lock files: the torch build it installs and what that build needs."""

    file: str
    torch: str
    cuda: tuple[int, int]
    architectures: tuple[str, ...]
    minimum_driver: str

    def setup(self) -> str:
        if self.file == "requirements.lock":
            return "python3 -m venv .venv && .venv/bin/pip install -r requirements.lock -e ."
        # The library's own metadata names the main lock's torch; this lock pins every package itself.
        venv = f".venv-{self.file.split('-')[-1].split('.')[0]}"
        return f"python3 -m venv {venv} && {venv}/bin/pip install --no-deps -r {self.file} -e ."


# The builds the project's locks install, read from each with `torch._C._cuda_getArchFlags()`;
# tests/test_compatibility.py checks the entry of the installed lock against the installed torch.
LOCKS = (
    Lock(
        "requirements.lock",
        torch="2.14.1",
        cuda=(13, 0),
        architectures=("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"),
        minimum_driver="580.65.06",
    ),
    Lock(
        "requirements-cu126.lock",
        torch="2.7.1",
        cuda=(12, 6),
        architectures=("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"),
        minimum_driver="525.60.13",
    ),
)


def _capability_of(architecture: str) -> tuple[str, int, int, str] | None:
    """'sm_86' -> ('sm', 8, 6, ''); 'sm_90a' -> ('sm', 9, 0, 'a'); 'compute_90' -> ('compute', 9, 0, '')."""
    match = re.fullmatch(r"(sm|compute)_(\d+?)(\d)([af]?)", architecture)
    if not match:
        return None
    kind, major, minor, suffix = match.groups()
    return kind, int(major), int(minor), suffix


def runs_on(capability: tuple[int, int], architectures: tuple[str, ...]) -> bool:
    """Whether kernels built for `architectures` run on a card of compute `capability`.

    Compiled code (sm_XY) runs on the same major at an equal or higher minor;
    arch-specific code (sm_90a) only on that exact capability; PTX
    (compute_XY) is compiled by the driver for any capability at or above it.
    """
    for architecture in architectures:
        parsed = _capability_of(architecture)
        if parsed is None:
            continue
        kind, major, minor, suffix = parsed
        if kind == "compute" and capability >= (major, minor):
            return True
        if kind == "sm" and suffix == "a" and capability == (major, minor):
            return True
        if kind == "sm" and suffix != "a" and capability[0] == major and capability[1] >= minor:
            return True
    return False


def lock_for(capability: tuple[int, int] | None, driver: Driver | None) -> Lock | None:
    """The first of the project's locks whose torch runs on this card under this driver, if any."""
    for lock in LOCKS:
        driver_fits = driver is None or driver.cuda[0] >= lock.cuda[0]
        card_fits = capability is None or runs_on(capability, lock.architectures)
        if driver_fits and card_fits:
            return lock
    return None


@dataclass(frozen=True)
class Verdict:
    """Whether torch can train on one GPU, and if not, why and what to do."""

    can_train: bool
    problem: str = ""
    fix: str = ""


def _fix(capability: tuple[int, int] | None, driver: Driver | None, build: TorchBuild) -> str:
    lock = lock_for(capability, driver)
    if lock is not None and lock.torch != build.version.split("+")[0]:
        return f"set up with {lock.file} (torch {lock.torch}, CUDA {lock.cuda[0]}.{lock.cuda[1]}): `{lock.setup()}`"
    if capability is not None and not any(runs_on(capability, lock.architectures) for lock in LOCKS):
        return (
            f"no torch build on PyPI has kernels for compute capability {capability[0]}.{capability[1]}: "
            "train on another GPU, or on the CPU (gpu.require: false)"
        )
    newest = LOCKS[0]
    return f"update the NVIDIA driver to {newest.minimum_driver} or newer (CUDA {newest.cuda[0]}.{newest.cuda[1]})"


def judge(capability: tuple[int, int] | None, driver: Driver | None, build: TorchBuild) -> Verdict:
    """Can `build` train on a card of `capability` under `driver`? (None where NVML could not say.)"""
    fix = _fix(capability, driver, build)
    if build.cuda is None:
        return Verdict(False, f"{build.describe()} cannot use a GPU", fix)
    if driver is not None and driver.cuda[0] < (build.cuda_major or 0):
        return Verdict(
            False,
            f"the driver {driver.version} runs CUDA up to {driver.cuda_text}; torch {build.version} is built for "
            f"CUDA {build.cuda}",
            fix,
        )
    if capability is not None and build.architectures and not runs_on(capability, build.architectures):
        return Verdict(
            False,
            f"torch {build.version} has no kernels for compute capability {capability[0]}.{capability[1]} "
            f"(built for {' '.join(build.architectures)})",
            fix,
        )
    if not build.cuda_available:
        known = " although the driver and the card fit" if driver is not None and capability is not None else ""
        return Verdict(
            False,
            f"torch {build.version} finds no CUDA device here{known} (torch.cuda.is_available() is false)",
            "check CUDA_VISIBLE_DEVICES and that `nvidia-smi` answers on this server",
        )
    return Verdict(True)


@dataclass(frozen=True)
class GpuCheck:
    """One GPU NVML sees and whether the installed torch can train on it."""

    index: int
    name: str
    capability: tuple[int, int] | None
    memory_mb: int
    verdict: Verdict

    @property
    def capability_text(self) -> str:
        return f"{self.capability[0]}.{self.capability[1]}" if self.capability else "?"

    def describe(self) -> str:
        """'NVIDIA GeForce GTX 1080, sm_61', or the bare name where the capability is unknown."""
        return f"{self.name}, sm_{self.capability[0]}{self.capability[1]}" if self.capability else self.name


@dataclass(frozen=True)
class ServerCheck:
    """Every GPU of this server against the installed torch build."""

    build: TorchBuild
    driver: Driver | None
    gpus: list[GpuCheck] = field(default_factory=list)

    @property
    def usable(self) -> set[int]:
        return {gpu.index for gpu in self.gpus if gpu.verdict.can_train}

    def problems(self) -> str:
        """The unusable GPUs, one clause each, then the fix (the same for every GPU of one kind)."""
        unusable = [gpu for gpu in self.gpus if not gpu.verdict.can_train]
        clauses = [f"GPU {gpu.index} ({gpu.describe()}): {gpu.verdict.problem}" for gpu in unusable]
        fixes = list(dict.fromkeys(gpu.verdict.fix for gpu in unusable))
        return "; ".join(clauses) + f". To train on {'it' if len(unusable) == 1 else 'them'}: " + "; or ".join(fixes)

    def table(self) -> str:
        """The check as `campaign plan` prints it."""
        if self.driver is None and not self.gpus:
            return (
                "GPUs of this server: none, no NVIDIA driver answers (NVML): trainings run on the CPU with "
                + self.build.describe()
            )
        driver = f"driver {self.driver.version} (CUDA up to {self.driver.cuda_text})" if self.driver else "driver ?"
        lines = [f"GPUs of this server: {driver}; installed {self.build.describe()}"]
        if not self.gpus:
            lines.append("  no GPU seen by NVML: trainings run on the CPU")
            return "\n".join(lines)
        lines.append(f"  {'GPU':<4} {'name':<28} {'capability':>10} {'memory':>9}  can train")
        for gpu in self.gpus:
            answer = "yes" if gpu.verdict.can_train else f"NO: {gpu.verdict.problem}"
            lines.append(
                f"  {gpu.index:<4} {gpu.name[:28]:<28} {gpu.capability_text:>10} {gpu.memory_mb:>6} MB  {answer}"
            )
        for fix in dict.fromkeys(gpu.verdict.fix for gpu in self.gpus if not gpu.verdict.can_train):
            lines.append(f"  to train on the GPUs marked NO: {fix}")
        return "\n".join(lines)


def check_server(devices: list, driver: Driver | None, build: TorchBuild) -> ServerCheck:
    """Judge each device (leases.Device: index, name, capability, total_mb) under the driver and the build."""
    return ServerCheck(
        build,
        driver,
        [GpuCheck(d.index, d.name, d.capability, d.total_mb, judge(d.capability, driver, build)) for d in devices],
    )
