"""A stand-in for NVML that answers as the server in $FAKE_NVML describes (JSON), for tests without a GPU.

Put this folder first on PYTHONPATH and the workflow's jobs read these
answers instead of a driver's: {"driver": "535.183.01", "cuda": 12020,
"gpus": [{"name": "NVIDIA GeForce GTX 1080", "capability": [6, 1], "memory_mb": 8192}]}.
Only what the workflow asks of NVML is answered.
"""

import json
import os
from types import SimpleNamespace


class NVMLError(Exception):
    pass


def _server() -> dict:
    return json.loads(os.environ["FAKE_NVML"])


def nvmlInit() -> None:
    pass


def nvmlShutdown() -> None:
    pass


def nvmlSystemGetDriverVersion() -> str:
    return _server()["driver"]


def nvmlSystemGetCudaDriverVersion() -> int:
    return _server()["cuda"]


def nvmlDeviceGetCount() -> int:
    return len(_server()["gpus"])


def nvmlDeviceGetHandleByIndex(index: int) -> dict:
    return _server()["gpus"][index]


def nvmlDeviceGetName(handle: dict) -> str:
    return handle["name"]


def nvmlDeviceGetCudaComputeCapability(handle: dict) -> tuple[int, int]:
    return tuple(handle["capability"])


def nvmlDeviceGetMemoryInfo(handle: dict) -> SimpleNamespace:
    total = handle["memory_mb"] * 2**20
    return SimpleNamespace(total=total, free=total - 300 * 2**20, used=300 * 2**20)


def nvmlDeviceGetUtilizationRates(handle: dict) -> SimpleNamespace:
    return SimpleNamespace(gpu=0, memory=0)
