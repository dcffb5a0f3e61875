"""Timings: which configurations share one, and the check that nothing else ran beside it."""

import logging
import subprocess
import sys
import time

from campaign.core.configurations import expand_campaign
from campaign.evaluation import timing
from campaign.evaluation.timing import LoadWatch, OtherLoad, exclusively, timing_representatives

CAMPAIGN = {
    "defaults": {"model": "yolov8n", "batch": 16, "imgsz": 64, "freeze": 0, "epochs": 1},
    "matrix": {"batch": [8, 16], "freeze": [0, 10], "imgsz": [64, 96]},
    "extra": [{"model": "yolov8s"}, {"model": "yolov8n", "gpus": 0}],
}


def test_configurations_differing_only_in_training_share_one_timing():
    configs = expand_campaign(CAMPAIGN)
    timed_by = timing_representatives(configs)
    # Batch and freeze change the training, not the network: one timing per model, size and kind of device.
    assert sorted(set(timed_by.values())) == [
        "yolov8n_b16_img64_freeze0",
        "yolov8n_b16_img64_freeze0_gpu0",
        "yolov8n_b16_img96_freeze0",
        "yolov8s_b16_img64_freeze0",
    ]
    assert timed_by["yolov8n_b8_img96_freeze10"] == "yolov8n_b16_img96_freeze0"
    assert timed_by["yolov8n_b16_img64_freeze0_gpu0"] == "yolov8n_b16_img64_freeze0_gpu0"  # on the CPU


def test_a_timing_that_exists_keeps_its_place_and_each_server_times_its_own():
    configs = expand_campaign(CAMPAIGN)
    # A configuration whose timing exists keeps it, though a new one sorts before it.
    timed_by = timing_representatives(configs, timed=["yolov8n_b8_img64_freeze10"])
    assert timed_by["yolov8n_b16_img64_freeze0"] == "yolov8n_b8_img64_freeze10"
    # Split between two servers: each shard times the networks of its own configurations.
    shard_of = {name: 1 + ("b8" in name) for name in configs}
    timed_by = timing_representatives(configs, shard_of)
    assert timed_by["yolov8n_b8_img64_freeze10"] == "yolov8n_b8_img64_freeze0"
    assert timed_by["yolov8n_b16_img64_freeze10"] == "yolov8n_b16_img64_freeze0"


def busy_process() -> subprocess.Popen:
    """Another process keeping one core busy."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def test_the_watch_sees_another_process_load_a_core():
    with LoadWatch("cpu") as quiet:
        time.sleep(1.0)
    other = busy_process()
    try:
        time.sleep(0.3)  # started
        with LoadWatch("cpu") as shared:
            time.sleep(1.0)
    finally:
        other.kill()
        other.wait()
    assert shared.load.cores > quiet.load.cores + 0.6, (quiet.load, shared.load)
    assert not shared.load.exclusive and shared.load.gpu_processes is None


class ScriptedWatch:
    """LoadWatch as the machine would answer: the other processes' load of each timing in turn.

    The real watch is tested above; this makes the retry's logic independent of what else runs here.
    """

    loads: list[float] = []

    def __init__(self, device):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.load = OtherLoad(cores=ScriptedWatch.loads.pop(0), gpu_processes=None)


def test_a_timing_shared_with_other_work_is_taken_again_and_recorded(caplog, monkeypatch):
    monkeypatch.setattr(timing, "LoadWatch", ScriptedWatch)
    monkeypatch.setattr(timing.time, "sleep", lambda seconds: None)
    calls = []

    def measure():
        calls.append(len(calls) + 1)
        return [{"latency_ms": float(len(calls))}]

    # The first timing shared the machine with a process busy on a core; the second had it alone.
    ScriptedWatch.loads = [1.0, 0.1]
    with caplog.at_level(logging.WARNING):
        rows = exclusively(measure, "cpu", logging.getLogger("test"))
    assert calls == [1, 2] and rows == [
        {"latency_ms": 2.0, "exclusive": True, "other_cores": 0.1, "other_gpu_processes": None}
    ]
    assert "timing 1 of 3 shared the machine: other processes kept 1.00 cores busy" in caplog.text
    # Never alone: every try made, the least disturbed kept and marked as shared.
    ScriptedWatch.loads, calls[:] = [0.9, 0.5, 0.7], []
    rows = exclusively(measure, "cpu", logging.getLogger("test"))
    assert calls == [1, 2, 3] and rows[0]["latency_ms"] == 2.0
    assert rows[0]["exclusive"] is False and rows[0]["other_cores"] == 0.5


def test_the_status_page_and_planner_see_the_timings_the_workflow_makes(tmp_path):
    """timed_by reads the recorded shard split and the timings that exist, as the rules do."""
    import json

    from campaign.planning.workload import timed_by

    configs = expand_campaign(CAMPAIGN)
    assert timed_by(configs, tmp_path) == timing_representatives(configs)
    (tmp_path / "latency").mkdir()
    (tmp_path / "latency" / "yolov8n_b8_img64_freeze10.csv").write_text("config\n")
    assert timed_by(configs, tmp_path)["yolov8n_b16_img64_freeze0"] == "yolov8n_b8_img64_freeze10"
    shard_of = {name: 1 + ("b8" in name) for name in configs}
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "shards.json").write_text(json.dumps({"count": 2, "basis": "test", "configs": shard_of}))
    timed = timed_by(configs, tmp_path)
    assert timed["yolov8n_b16_img64_freeze10"] == "yolov8n_b16_img64_freeze0"  # its shard's own
    assert timed["yolov8n_b8_img64_freeze0"] == "yolov8n_b8_img64_freeze10"  # the one already timed
