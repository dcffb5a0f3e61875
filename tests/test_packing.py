"""Several trainings on one GPU: admitted by their memory need and a share count, never beyond either."""

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from campaign.core.configurations import ConfigError, expand_campaign, section_defaults
from campaign.gpus.leases import LeaseOptions, NoDeviceError, lease_devices
from campaign.planning.packing import training_needs_mb

DEVICES = [{"index": 0, "memory_mb": 8192}, {"index": 1, "memory_mb": 8192}]


def packing(lock_dir: Path, max_share: int = 2) -> LeaseOptions:
    return LeaseOptions(lock_dir=lock_dir, poll_seconds=0.02, declared=DEVICES, pack=True, max_share=max_share)


def hold_share(lock_dir: str, need_mb: float, seconds: float, journal: str) -> None:
    with lease_devices(1, packing(Path(lock_dir)), job=f"pid{os.getpid()}", need_mb=need_mb) as lease:
        start = time.monotonic()
        time.sleep(seconds)
        end = time.monotonic()
    record = {"device": lease.devices[0].index, "need": lease.share_mb, "start": start, "end": end}
    with open(journal, "a") as stream:
        stream.write(json.dumps(record) + "\n")


def test_holders_share_a_device_within_its_memory_and_share_count(tmp_path):
    journal = tmp_path / "journal.jsonl"
    workers = [
        multiprocessing.Process(target=hold_share, args=(str(tmp_path / "locks"), 3000, 0.3, str(journal)))
        for _ in range(12)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert len(records) == 12 and all(r["need"] == 3000 for r in records)
    for moment in sorted({r["start"] for r in records}):
        for device in (0, 1):
            holders = [r for r in records if r["device"] == device and r["start"] <= moment < r["end"]]
            assert len(holders) <= 2 and sum(r["need"] for r in holders) <= 8192, (moment, holders)
    # Shared: at some moment two holders were on one device.
    assert any(
        sum(1 for r in records if r["device"] == d and r["start"] <= m < r["end"]) == 2
        for m in (r["start"] for r in records)
        for d in (0, 1)
    )


def test_needs_that_do_not_fit_together_are_not_admitted_together(tmp_path):
    options = packing(tmp_path / "locks", max_share=4)
    with lease_devices(1, options, need_mb=5000) as first, lease_devices(1, options, need_mb=5000) as second:
        assert first.devices[0].index != second.devices[0].index  # 10,000 MB would not fit one 8,192 MB device
        with lease_devices(1, options, need_mb=3000) as third:
            assert third.share_mb == 3000  # 5,000 + 3,000 fit
        assert len({first.devices[0].index, second.devices[0].index}) == 2


def _hold_share_forever(lock_dir: str) -> None:
    with lease_devices(
        1, LeaseOptions(lock_dir=Path(lock_dir), declared=DEVICES[:1], pack=True, max_share=1), need_mb=3000
    ):
        time.sleep(600)


def test_a_killed_sharer_frees_its_share_at_once(tmp_path):
    holder = multiprocessing.Process(target=_hold_share_forever, args=(str(tmp_path / "locks"),))
    holder.start()
    share = tmp_path / "locks" / "gpu0.share0.lock"
    deadline = time.monotonic() + 30
    while not (share.exists() and share.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert json.loads(share.read_text()) | {"since": 0} == {
        "pid": holder.pid,
        "host": os.uname().nodename,
        "job": "",
        "since": 0,
        "device": 0,
        "need_mb": 3000,
    }
    options = LeaseOptions(lock_dir=tmp_path / "locks", poll_seconds=0.02, declared=DEVICES[:1], pack=True, max_share=1)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    started = time.monotonic()
    with lease_devices(1, options, need_mb=3000) as lease:
        assert lease.share_mb == 3000
    assert time.monotonic() - started < 1.0


def test_a_job_with_no_known_need_takes_a_whole_device_no_sharer_joins(tmp_path):
    options = LeaseOptions(lock_dir=tmp_path / "locks", poll_seconds=0.02, declared=DEVICES[:1], pack=True, max_share=2)
    with lease_devices(1, options, need_mb=1000) as shared:
        assert shared.share_mb == 1000
        waiting = multiprocessing.Process(target=_whole_device, args=(str(tmp_path / "locks"), str(tmp_path / "got")))
        waiting.start()
        time.sleep(0.5)
        assert not (tmp_path / "got").exists(), "a whole-device job started beside a sharer"
    waiting.join(30)
    assert (tmp_path / "got").read_text() == "None"  # a whole device: no share
    with lease_devices(1, options) as whole:  # and while one holds it, no sharer is admitted
        assert whole.share_mb is None
        late = LeaseOptions(
            lock_dir=tmp_path / "locks", poll_seconds=0.02, declared=DEVICES[:1], pack=True, max_share=2
        )
        assert _admitted_within(late, 0.3) is False


def _whole_device(lock_dir: str, out: str) -> None:
    options = LeaseOptions(lock_dir=Path(lock_dir), poll_seconds=0.02, declared=DEVICES[:1], pack=True, max_share=2)
    with lease_devices(1, options) as lease:
        Path(out).write_text(str(lease.share_mb))


def _admitted_within(options: LeaseOptions, seconds: float) -> bool:
    process = multiprocessing.Process(target=_take_share, args=(options,))
    process.start()
    process.join(seconds)
    admitted = not process.is_alive()
    process.kill()
    process.join()
    return admitted


def _take_share(options: LeaseOptions) -> None:
    with lease_devices(1, options, need_mb=500):
        pass


def test_a_need_larger_than_any_device_fails_at_once(tmp_path):
    with pytest.raises(NoDeviceError, match="needs 9000 MB, more than any device here has"):
        with lease_devices(1, packing(tmp_path / "locks"), need_mb=9000):
            pass


def test_needs_come_from_the_config_or_the_probes_plus_headroom(tmp_path):
    campaign = {
        "defaults": {"model": "yolov8n", "batch": 16, "imgsz": 64, "freeze": 0, "epochs": 1},
        "matrix": {"batch": [16, 32]},
        "extra": [{"model": "yolov8s", "batch": 16, "gpus": 2}],
    }
    configs = expand_campaign(campaign)
    probes = tmp_path / "probes.csv"
    probes.write_text(
        "probe,model,imgsz,configured_batch,batch,freeze,device,device_name,fits,peak_memory_mb,"
        "train_seconds_per_image,val_seconds_per_image,iterations\n"
        "yolov8n_b32_img64_freeze0,yolov8n,64,32,32,0,0,GPU,True,2100.4,0.01,0.01,5\n"
    )
    gpu = {**section_defaults("gpu"), "pack": True, "headroom_mb": 500, "needs_mb": {"yolov8n_b16_img64_freeze0": 1200}}
    # The DDP configuration (gpus 2) takes whole GPUs; the probed one its peak plus headroom.
    assert training_needs_mb(configs, gpu, probes) == {
        "yolov8n_b16_img64_freeze0": 1200,
        "yolov8n_b32_img64_freeze0": 2601,
    }
    assert training_needs_mb(configs, {**gpu, "pack": False}, probes) == {}
    with pytest.raises(ConfigError, match=r"gpu.needs_mb.yolov8n_b16_img64_freeze0: 9000 MB is more than a GPU"):
        training_needs_mb(
            configs, {**gpu, "emulate_memory_mb": 8192, "needs_mb": {"yolov8n_b16_img64_freeze0": 9000}}, probes
        )
    with pytest.raises(ConfigError, match=r"gpu.needs_mb.nope: not a configuration of this campaign"):
        training_needs_mb(configs, {**gpu, "needs_mb": {"nope": 10}}, probes)
