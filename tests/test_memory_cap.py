"""Rehearsing an 8 GB card on a larger GPU: the cap reaches the processes a job starts, and the plan."""

import os

import pytest

from campaign.gpus import memory_cap
from campaign.planning.plan import planned_device_memory


def test_the_plan_checks_fits_against_the_emulated_card():
    config = {"gpu": {"emulate_memory_mb": 8192, "devices": [{"index": 0, "memory_mb": 81920}]}}
    assert planned_device_memory(config, None) == (8192.0, "gpu.emulate_memory_mb")
    # An explicit figure on the command line still wins.
    assert planned_device_memory(config, 4096) == (4096, "--device-memory-mb")


def test_an_inherited_cap_is_left_alone_on_the_cpu(monkeypatch):
    monkeypatch.setenv(memory_cap.CAP_VARIABLE, "8192")
    memory_cap.apply_inherited_cap("cpu")  # must not touch CUDA on a CPU job


def test_a_cap_is_set_per_device_and_passed_on_to_child_processes(monkeypatch):
    import torch

    fractions = {}
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda index: type("P", (), {"total_memory": 143771 * 2**20})()
    )
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, i: fractions.__setitem__(i, f))
    monkeypatch.delenv(memory_cap.CAP_VARIABLE, raising=False)
    said = memory_cap.cap_cuda_memory(8192, 1)
    assert fractions == {0: pytest.approx(8192 / 143771)}
    assert "8192 of 143771 MB" in said[0]
    assert os.environ[memory_cap.CAP_VARIABLE] == "8192"
    fractions.clear()
    memory_cap.apply_inherited_cap("0,1")  # a probe's measuring process on two leased devices
    assert sorted(fractions) == [0, 1]
