"""Rehearse a smaller GPU on a larger one: cap PyTorch's CUDA allocator at the smaller card's memory.

With `gpu.emulate_memory_mb` set, every job that leased a real GPU gives
PyTorch's caching allocator that much of each leased device
(`torch.cuda.set_per_process_memory_fraction`). An allocation beyond it fails
with the very `torch.OutOfMemoryError` an 8 GB card would raise, so probes,
Ultralytics' own batch halving and the workflow's out-of-memory policy all
act as they would on the course's GPUs.

The cap bounds what the allocator reserves, which is what probes measure
(`torch.cuda.max_memory_reserved`). A real card of that size also holds the
CUDA context and cuDNN's libraries (a few hundred MB, outside the
allocator), so a configuration that fits the cap with less than that to
spare may still fail there.

Processes a job starts inherit the cap through CAP_VARIABLE and apply it
with `apply_inherited_cap` (the probe's measuring processes do).
Ultralytics' multi-GPU (DDP) workers are started by Ultralytics and are not
capped: the rehearsal is for one GPU per training.
"""

from __future__ import annotations

import os

CAP_VARIABLE = "DETECTION_CAMPAIGN_GPU_MEMORY_CAP_MB"


def cap_cuda_memory(cap_mb: float, device_count: int) -> list[str]:
    """Cap the allocator on devices 0..device_count-1 of this process (and its children) at `cap_mb`.

    Returns one line per device saying what it was capped at, for the job's log.
    """
    import torch

    said = []
    for index in range(min(device_count, torch.cuda.device_count())):
        total = torch.cuda.get_device_properties(index).total_memory
        fraction = min(1.0, cap_mb * 2**20 / total)
        torch.cuda.set_per_process_memory_fraction(fraction, index)
        said.append(f"cuda:{index} capped at {cap_mb:.0f} of {total / 2**20:.0f} MB (fraction {fraction:.4f})")
    os.environ[CAP_VARIABLE] = str(cap_mb)
    return said


def apply_inherited_cap(device: str) -> None:
    """In a process a capped job started: cap the same devices (no-op on the CPU or without a cap)."""
    cap = os.environ.get(CAP_VARIABLE)
    if cap and device != "cpu":
        cap_cuda_memory(float(cap), len(device.split(",")))
