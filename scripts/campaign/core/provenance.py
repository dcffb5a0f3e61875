"""How a result was made: arguments, data, weights, software, machine and time.

A small JSON beside every training, evaluation and speed result, so that a
number can be traced weeks later without the logs.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "torchvision", "ultralytics", "snakemake", "numpy", "nvidia-ml-py")


def dataset_hash(manifest: Path, split_lists: list[Path]) -> str:
    """Hash of the cleaned dataset: the manifest holds every image's and label's content hash."""
    digest = hashlib.sha256()
    for path in [manifest, *sorted(split_lists)]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def file_hash(path: Path | None) -> str | None:
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()[:16]


def software_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    try:
        import torch

        versions["cuda"] = torch.version.cuda
        versions["cudnn"] = str(torch.backends.cudnn.version()) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return versions


def torch_architectures() -> list[str]:
    """The GPU architectures the installed torch carries kernels for ('sm_75', ..., 'compute_90'); [] for a CPU build.

    torch.cuda.get_arch_list() answers [] where no device is usable; the build's own flags do not depend on one.
    """
    import torch

    flags = torch._C._cuda_getArchFlags() if torch.version.cuda else None
    return (flags or "").split()


def build_record(device: str) -> dict[str, Any]:
    """Which torch build ran a job, and the compute capability of each device it used (none on the CPU)."""
    import torch

    capabilities = []
    if device != "cpu" and torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(index)
            capabilities.append(f"{major}.{minor}")
    return {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "torch_architectures": torch_architectures(),
        "device_capability": capabilities,
    }


def git_state(directory: Path) -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def provenance(
    *,
    config_name: str,
    args: dict[str, Any],
    args_hash: str,
    dataset: str,
    weights: Path | None,
    device: str,
    started: str,
    workflow_dir: Path,
) -> dict[str, Any]:
    import torch

    devices = []
    if device != "cpu" and torch.cuda.is_available():
        devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "config": config_name,
        "args": args,
        "args_hash": args_hash,
        "dataset_hash": dataset,
        "weights": str(weights) if weights else None,
        "weights_hash": file_hash(weights),
        "software": software_versions(),
        "git": git_state(workflow_dir),
        "device": device,
        "device_names": devices or [platform.processor() or platform.machine()],
        "build": build_record(device),
        "host": platform.node(),
        "started": started,
        "finished": now(),
    }
