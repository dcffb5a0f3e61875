"""Device leases between real concurrent processes, on devices declared in the config."""

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from campaign.gpus.leases import LeaseOptions, NoDeviceError, lease_devices

pytestmark = pytest.mark.slow  # concurrent lease holders in subprocesses

DEVICES = [{"index": i, "memory_mb": 8192} for i in range(3)]


def options(tmp_path: Path, **extra) -> LeaseOptions:
    return LeaseOptions(
        lock_dir=tmp_path / "locks", poll_seconds=0.02, declared=extra.pop("declared", DEVICES), **extra
    )


def hold(lock_dir: str, count: int, seconds: float, journal: str) -> None:
    lease_options = LeaseOptions(lock_dir=Path(lock_dir), poll_seconds=0.02, declared=DEVICES)
    with lease_devices(count, lease_options, job=f"pid{os.getpid()}") as lease:
        start = time.monotonic()
        time.sleep(seconds)
        end = time.monotonic()
    with open(journal, "a") as stream:
        stream.write(json.dumps({"devices": [d.index for d in lease.devices], "start": start, "end": end}) + "\n")


def test_concurrent_holders_never_share_a_device_nor_exceed_the_count(tmp_path):
    journal = tmp_path / "journal.jsonl"
    workers = [
        multiprocessing.Process(target=hold, args=(str(tmp_path / "locks"), 1 + i % 2, 0.15, str(journal)))
        for i in range(12)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert len(records) == 12
    for i, a in enumerate(records):
        assert len(set(a["devices"])) == len(a["devices"]) and a["devices"]
        for b in records[i + 1 :]:
            overlap = a["start"] < b["end"] and b["start"] < a["end"]
            if overlap:
                assert not set(a["devices"]) & set(b["devices"]), (a, b)
    moments = sorted({r["start"] for r in records})
    for moment in moments:
        busy = sum(len(r["devices"]) for r in records if r["start"] <= moment < r["end"])
        assert busy <= len(DEVICES)


def test_a_killed_holder_frees_its_device_at_once(tmp_path):
    one = [DEVICES[0]]
    holder = multiprocessing.Process(target=_hold_forever, args=(str(tmp_path / "locks"),))
    holder.start()
    lock = tmp_path / "locks" / "gpu0.lock"
    deadline = time.monotonic() + 30
    while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert json.loads(lock.read_text())["pid"] == holder.pid
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    started = time.monotonic()
    with lease_devices(1, options(tmp_path, declared=one)) as lease:
        assert [d.index for d in lease.devices] == [0]
    assert time.monotonic() - started < 1.0


def _hold_forever(lock_dir: str) -> None:
    with lease_devices(1, LeaseOptions(lock_dir=Path(lock_dir), declared=[DEVICES[0]])):
        time.sleep(600)


def test_the_device_with_most_free_memory_is_chosen_and_loaded_ones_skipped(tmp_path):
    declared = [
        {"index": 0, "memory_mb": 8192, "free_mb": 3000},
        {"index": 1, "memory_mb": 8192, "free_mb": 7000, "utilization": 95},
        {"index": 2, "memory_mb": 8192, "free_mb": 6000},
        {"index": 3, "memory_mb": 8192, "free_mb": 500},
    ]
    with lease_devices(2, options(tmp_path, declared=declared)) as lease:
        assert [d.index for d in lease.devices] == [2, 0]


def test_without_gpu_the_cpu_is_used_unless_a_gpu_is_required(tmp_path):
    with lease_devices(1, options(tmp_path, declared=[])) as lease:
        assert lease.devices == [] and lease.ultralytics_device() == "cpu"
    with pytest.raises(NoDeviceError, match="gpu.require"):
        with lease_devices(1, options(tmp_path, declared=[], require_gpu=True)):
            pass


@pytest.fixture
def torch_with_cuda(monkeypatch):
    """The installed torch as it answers on a GPU server whose driver and cards fit (see test_compatibility.py)."""
    import campaign.gpus.leases as leases
    from campaign.gpus.compatibility import LOCKS, TorchBuild

    build = TorchBuild("2.14.1+cu130", "13.0", LOCKS[0].architectures, cuda_available=True)
    monkeypatch.setattr(TorchBuild, "installed", classmethod(lambda cls: build))
    monkeypatch.setattr(leases, "nvml_driver", lambda: None)


def test_inside_slurm_the_allocated_devices_are_used(tmp_path, monkeypatch, torch_with_cuda):
    import campaign.gpus.leases as leases

    monkeypatch.setattr(leases, "nvml_devices", lambda: [])
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    with lease_devices(2, LeaseOptions(lock_dir=tmp_path / "locks")) as lease:
        assert lease.source == "slurm" and [d.index for d in lease.devices] == [2, 3]


def test_a_request_no_device_can_ever_meet_fails_instead_of_waiting(tmp_path):
    small = [{"index": 0, "memory_mb": 1000}]
    with pytest.raises(NoDeviceError, match="gpu.min_free_mb"):
        with lease_devices(1, options(tmp_path, declared=small, min_free_mb=2000)):
            pass


def test_nvml_leases_number_devices_as_nvml_does(tmp_path, monkeypatch, torch_with_cuda):
    """CUDA's default order is fastest first; on a server with mixed cards only PCI order matches NVML's index."""
    import campaign.gpus.leases as leases

    cards = [leases.Device(0, "RTX 2080", 8192, 8000), leases.Device(1, "RTX 3090", 24576, 24000)]
    monkeypatch.setattr(leases, "nvml_devices", lambda: cards)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with lease_devices(1, LeaseOptions(lock_dir=tmp_path / "locks", poll_seconds=0.02)) as lease:
        assert [d.index for d in lease.devices] == [1]  # the most free memory
        assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    assert "CUDA_DEVICE_ORDER" not in os.environ and "CUDA_VISIBLE_DEVICES" not in os.environ
