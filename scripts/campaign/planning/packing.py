"""Several trainings on one GPU: what each needs, and how Snakemake counts GPUs then.

With `gpu.pack`, a one-GPU training whose memory need is known takes a share
of a device (leases.py admits it while the needs of the device's holders fit
its memory and they are at most `gpu.max_share`). Its need is, in this
order, `gpu.needs_mb.<configuration>`, or its probe's peak memory at its
batch (results/plan/probes.csv, from `campaign plan --probe`) plus
`gpu.headroom_mb`. A training with no known need, or with gpus > 1 (DDP
workers cannot be capped), takes whole GPUs, as every job does without
packing.

Snakemake's `gpu` resource then counts shares: a shared training asks for 1,
a whole GPU for `max_share`, so that `--resources gpu=<GPUs x max_share>`
bounds both. Each training also declares its need as the `gpu_mb` resource,
shown by a dry-run and usable as a bound (`--resources gpu_mb=<total MB>`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from campaign.core.configurations import ConfigError
from campaign.planning.estimate import probed_memory_mb, read_probes
from campaign.planning.probe import probe_settings


def training_needs_mb(configs: dict[str, Any], gpu: dict[str, Any], probes_csv: Path) -> dict[str, int]:
    """The memory need in MB of every configuration that may share a GPU (none without gpu.pack)."""
    if not gpu["pack"]:
        return {}

    explicit = gpu["needs_mb"]
    unknown = [name for name in explicit if name not in configs]
    if unknown:
        raise ConfigError(f"gpu.needs_mb.{unknown[0]}: not a configuration of this campaign (campaign plan lists them)")
    probes = read_probes(probes_csv) if probes_csv.is_file() else {}
    needs = {}
    for name, run in configs.items():
        if run.gpus != 1:
            continue
        if name in explicit:
            needs[name] = int(explicit[name])
            continue
        rows = probes.get(probe_settings(run)[0])
        memory = probed_memory_mb(rows)[0] if rows else None
        if memory is not None:
            needs[name] = math.ceil(memory + gpu["headroom_mb"])
    capacity = device_capacity_mb(gpu)
    for name, need in needs.items():
        if capacity is not None and need > capacity:
            where = f"gpu.needs_mb.{name}" if name in explicit else f"its probe plus gpu.headroom_mb ({name})"
            raise ConfigError(
                f"{where}: {need} MB is more than a GPU here has ({capacity:.0f} MB); it could never be admitted: "
                "lower its batch (campaign plan --probe says which fits), or set gpus: 2"
            )
    return needs


def device_capacity_mb(gpu: dict[str, Any]) -> float | None:
    """The memory of the largest GPU as the config knows it before any job: emulated or declared; None: ask NVML."""
    if gpu["emulate_memory_mb"]:
        return float(gpu["emulate_memory_mb"])
    if isinstance(gpu["devices"], list) and gpu["devices"]:
        return float(max(device.get("memory_mb", 8192) for device in gpu["devices"]))
    return None


def shares_per_gpu(gpu: dict[str, Any]) -> int:
    """What Snakemake's `gpu` resource counts for one whole GPU."""
    return gpu["max_share"] if gpu["pack"] else 1
