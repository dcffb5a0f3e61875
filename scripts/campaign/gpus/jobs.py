"""What every GPU rule job does around its work: lease devices, optionally monitor them (see rule_job.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from campaign.core.configurations import section_defaults
from campaign.gpus.leases import Lease, LeaseOptions, lease_devices
from campaign.gpus.memory_cap import cap_cuda_memory
from campaign.gpus.monitor import Monitor


@contextmanager
def leased_device(
    count: int,
    gpu: dict,
    name: str,
    log: logging.Logger,
    monitor_csv: Path | None = None,
    tensorboard_dir: Path | None = None,
    cpu_allowed: bool = False,
    need_mb: float | None = None,
) -> Iterator[Lease]:
    """Lease `count` GPUs under the config's `gpu` section for the job `name`, and monitor them.

    `cpu_allowed` lets a job fall back to the CPU even where `gpu.require` is
    set: a probe measures whatever device there is and says which. `need_mb`,
    with gpu.pack, asks for a share of a device instead; the job is then
    capped at it (its allocator on a GPU, its memory on a declared device).
    """
    gpu = {**section_defaults("gpu"), **gpu}  # what the config leaves out takes the schema's default
    options = LeaseOptions.from_config(gpu)
    if cpu_allowed:
        options.require_gpu = False
    with ExitStack() as stack:
        lease = stack.enter_context(lease_devices(count, options, job=name, log=log, need_mb=need_mb or None))
        cap_mb = lease.share_mb or gpu["emulate_memory_mb"]
        if lease.source == "declared" and lease.ultralytics_device() == "cpu":
            limit_memory_to_declared(lease, log)
        elif cap_mb and lease.ultralytics_device() != "cpu":
            why = "its share of the GPU" if lease.share_mb else "gpu.emulate_memory_mb"
            for line in cap_cuda_memory(cap_mb, len(lease.devices)):
                log.info("%s: %s", why, line)
        if monitor_csv is not None:
            indices = [d.index for d in lease.devices] if lease.source in ("nvml", "slurm") else []
            stack.enter_context(Monitor(monitor_csv, indices, gpu["monitor_seconds"], tensorboard_dir))
        yield lease


def limit_memory_to_declared(lease: Lease, log: logging.Logger) -> None:
    """On the CPU, give the job the leased declared devices' memory (or its share of one) as its budget.

    Allocations beyond it fail inside training with a real memory error, as
    they would on a GPU of that size: this is how the out-of-memory recovery
    is exercised on machines without a GPU.
    """
    import io
    import resource

    import polars

    # Polars (Ultralytics reads results.csv with it) starts its thread pools on first use; started under the
    # limit they may fail to map their stacks and hang the job instead of raising. Started here, they are not
    # part of the budget, which is the training's.
    polars.read_csv(io.StringIO("epoch\n1\n"))
    budget = (lease.share_mb or sum(device.total_mb for device in lease.devices)) * 2**20
    with open("/proc/self/status") as status:
        mapped_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    limit = mapped_kb * 1024 + budget
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    log.info("declared devices: memory limited to %d MB beyond the %d MB already mapped", budget >> 20, mapped_kb >> 10)
