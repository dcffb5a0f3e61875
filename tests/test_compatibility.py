"""Which GPUs the installed torch can train on, with NVML's and torch's answers replaced by fakes."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import campaign.gpus.leases as leases
from campaign.core.provenance import torch_architectures
from campaign.gpus.compatibility import LOCKS, Driver, TorchBuild, check_server, judge, lock_for, runs_on
from campaign.gpus.leases import Device, LeaseOptions, NoDeviceError, lease_devices
from campaign.planning.plan import gpu_check_section

MAIN, OLDER = LOCKS
# The main lock's torch on a server where CUDA works.
CU130 = TorchBuild("2.14.1+cu130", "13.0", MAIN.architectures, cuda_available=True)
NEW_DRIVER = Driver("580.95.05", (13, 0))
OLD_DRIVER = Driver("535.183.01", (12, 2))
GTX_1080 = Device(0, "NVIDIA GeForce GTX 1080", 8192, 7892, capability=(6, 1))
RTX_3070 = Device(1, "NVIDIA GeForce RTX 3070", 8192, 7000, capability=(8, 6))


def test_kernels_run_on_their_major_at_an_equal_or_higher_minor_and_ptx_on_anything_newer():
    assert runs_on((8, 6), ("sm_80",)) and runs_on((8, 9), ("sm_86",))
    assert not runs_on((6, 1), MAIN.architectures)  # a GTX 1080: no Pascal kernels in the main lock
    assert not runs_on((7, 0), MAIN.architectures)  # a V100: sm_75 does not run on 7.0
    assert runs_on((6, 1), OLDER.architectures) and runs_on((7, 0), OLDER.architectures)
    assert not runs_on((12, 0), ("sm_90",)) and runs_on((12, 0), ("sm_90", "compute_90"))
    assert runs_on((9, 0), ("sm_90a",)) and not runs_on((10, 0), ("sm_90a",))
    assert not runs_on((3, 7), OLDER.architectures + MAIN.architectures)


def test_the_installed_lock_is_described_as_it_was_built():
    """LOCKS names each lock's build; the installed torch must be one of them, exactly (the suite runs under both)."""
    version = torch.__version__.split("+")[0]
    lock = next((lock for lock in LOCKS if lock.torch == version), None)
    assert lock is not None, f"torch {torch.__version__} is none of the project's locks {[lk.file for lk in LOCKS]}"
    assert lock.architectures == tuple(torch_architectures())
    assert f"{lock.cuda[0]}.{lock.cuda[1]}" == torch.version.cuda


def test_an_old_driver_is_named_with_both_cuda_versions_and_the_lock_that_runs_on_it():
    verdict = judge((8, 6), OLD_DRIVER, CU130)
    assert not verdict.can_train
    assert verdict.problem == ("the driver 535.183.01 runs CUDA up to 12.2; torch 2.14.1+cu130 is built for CUDA 13.0")
    assert verdict.fix == (
        "set up with requirements-cu126.lock (torch 2.7.1, CUDA 12.6): "
        "`python3 -m venv .venv-cu126 && .venv-cu126/bin/pip install --no-deps -r requirements-cu126.lock -e .`"
    )


def test_a_card_without_kernels_names_its_capability_the_builds_list_and_the_lock_with_them():
    verdict = judge((6, 1), NEW_DRIVER, CU130)
    assert not verdict.can_train
    assert "no kernels for compute capability 6.1 (built for sm_75 sm_80 sm_86 sm_90 sm_100 sm_120)" in verdict.problem
    assert "requirements-cu126.lock" in verdict.fix


def test_what_no_lock_can_fix_is_said_as_such():
    assert "no torch build on PyPI has kernels for compute capability 3.7" in judge((3, 7), NEW_DRIVER, CU130).fix
    # A current card under a CUDA 11 driver: no lock runs there, a newer driver does.
    assert judge((8, 6), Driver("470.256.02", (11, 4)), CU130).fix.startswith("update the NVIDIA driver to 580.65.06")
    assert lock_for((8, 6), NEW_DRIVER) is MAIN and lock_for((6, 1), NEW_DRIVER) is OLDER


def test_the_older_lock_trains_where_the_main_one_cannot():
    cu126 = TorchBuild("2.7.1+cu126", "12.6", OLDER.architectures, cuda_available=True)
    assert judge((6, 1), OLD_DRIVER, cu126).can_train
    assert judge((7, 0), OLD_DRIVER, cu126).can_train
    assert judge((8, 6), NEW_DRIVER, CU130).can_train
    cpu_build = TorchBuild("2.13.0+cpu", None)
    assert "a CPU build" in judge((8, 6), NEW_DRIVER, cpu_build).problem


@pytest.fixture
def server(monkeypatch):
    """Fake NVML and torch: set `server.devices`, `server.driver`, `server.build`."""

    class Server:
        devices = [GTX_1080, RTX_3070]
        driver = NEW_DRIVER
        build = CU130

    monkeypatch.setattr(leases, "nvml_devices", lambda: list(Server.devices))
    monkeypatch.setattr(leases, "nvml_driver", lambda: Server.driver)
    monkeypatch.setattr(TorchBuild, "installed", classmethod(lambda cls: Server.build))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    for name in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"):
        monkeypatch.delenv(name, raising=False)
    return Server


def lease_options(tmp_path, **extra) -> LeaseOptions:
    return LeaseOptions(lock_dir=tmp_path / "locks", poll_seconds=0.02, **extra)


def test_a_mixed_server_leases_only_the_card_torch_can_use(tmp_path, server, caplog):
    # The GTX 1080 has more free memory, so it would be chosen first if it were usable.
    caplog.set_level(logging.INFO)
    for _ in range(3):
        with lease_devices(1, lease_options(tmp_path), log=logging.getLogger("job")) as lease:
            assert [d.index for d in lease.devices] == [1] and lease.fallback is None
    assert "GPU(s) that torch cannot train on are not leased: GPU 0 (NVIDIA GeForce GTX 1080, sm_61)" in caplog.text
    with pytest.raises(NoDeviceError, match="has 1 with at least"):  # two asked, one usable: never waits forever
        with lease_devices(2, lease_options(tmp_path)):
            pass


def test_with_gpu_require_an_unusable_server_stops_at_once_with_the_device_both_cudas_and_the_fix(tmp_path, server):
    server.devices, server.driver = [GTX_1080], OLD_DRIVER
    server.build = TorchBuild("2.14.1+cu130", "13.0", MAIN.architectures, cuda_available=False)
    with pytest.raises(NoDeviceError) as error:
        with lease_devices(1, lease_options(tmp_path, require_gpu=True)):
            pass
    assert str(error.value) == (
        "gpu.require is set, but torch cannot train on this server's GPUs: GPU 0 (NVIDIA GeForce GTX 1080, sm_61): "
        "the driver 535.183.01 runs CUDA up to 12.2; torch 2.14.1+cu130 is built for CUDA 13.0. To train on it: "
        "set up with requirements-cu126.lock (torch 2.7.1, CUDA 12.6): "
        "`python3 -m venv .venv-cu126 && .venv-cu126/bin/pip install --no-deps -r requirements-cu126.lock -e .`"
    )


def test_without_gpu_require_the_cpu_fallback_is_one_warning_and_recorded_on_the_lease(tmp_path, server, caplog):
    server.devices = [GTX_1080]
    with lease_devices(1, lease_options(tmp_path), log=logging.getLogger("job")) as lease:
        assert lease.devices == [] and lease.ultralytics_device() == "cpu"
        assert lease.fallback.startswith("trained on the CPU: torch cannot use this server's GPUs: GPU 0")
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert [record.getMessage() for record in warnings] == [lease.fallback]


def test_inside_slurm_a_given_card_torch_cannot_use_is_not_trained_on_silently(tmp_path, server, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(NoDeviceError, match="sm_61"):
        with lease_devices(1, lease_options(tmp_path, require_gpu=True)):
            pass
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with lease_devices(1, lease_options(tmp_path, require_gpu=True)) as lease:
        assert lease.source == "slurm" and [d.index for d in lease.devices] == [1]


def test_the_plan_prints_each_gpu_with_whether_it_can_train_and_the_fix(server):
    section = gpu_check_section({"require": True})
    lines = section.splitlines()
    assert lines[0] == (
        "GPUs of this server: driver 580.95.05 (CUDA up to 13.0); installed torch 2.14.1+cu130 "
        "(CUDA 13.0; kernels for sm_75 sm_80 sm_86 sm_90 sm_100 sm_120)"
    )
    assert lines[2].split()[:3] == ["0", "NVIDIA", "GeForce"] and "6.1" in lines[2]
    assert "NO: torch 2.14.1+cu130 has no kernels for compute capability 6.1" in lines[2]
    assert lines[3].endswith("yes") and "8.6" in lines[3]
    assert lines[4].startswith("  to train on the GPUs marked NO: set up with requirements-cu126.lock")
    server.devices = [GTX_1080]
    assert "gpu.require is set: every training will stop at once on this server" in gpu_check_section({"require": True})
    assert "would run on the CPU" in gpu_check_section({"require": False})


def test_the_plan_says_a_server_without_a_driver_trains_on_the_cpu(server):
    server.devices, server.driver = [], None
    assert "no NVIDIA driver answers (NVML): trainings run on the CPU" in gpu_check_section({})
    assert "declared in gpu.devices" in gpu_check_section({"devices": [{"index": 0}]})


def test_a_check_without_nvml_facts_still_asks_torch():
    check = check_server([Device(0, "slurm-gpu-0", 0, 0)], None, TorchBuild("2.14.1+cu130", "13.0", (), False))
    assert check.usable == set() and "torch.cuda.is_available() is false" in check.problems()


# A GTX 1080 (sm_61) under a driver of CUDA 12.2, as the workflow's jobs read it through NVML (tests/fake_nvml).
OLD_SERVER = {
    "driver": "535.183.01",
    "cuda": 12020,
    "gpus": [{"name": "NVIDIA GeForce GTX 1080", "capability": [6, 1], "memory_mb": 8192}],
}


@pytest.mark.slow
@pytest.mark.both_locks  # a real training through the workflow under each lock's torch
def test_a_campaign_on_an_old_server_stops_under_require_and_otherwise_says_it_trained_on_the_cpu(
    tmp_path, monkeypatch
):
    """The workflow itself, with NVML answering as an old server: the plan, `gpu.require: true`, then false."""
    from tiny_campaign import ROOT, TINY, snakemake, workflow_env

    monkeypatch.setenv("PYTHONPATH", f"{ROOT / 'tests' / 'fake_nvml'}:{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("FAKE_NVML", json.dumps(OLD_SERVER))
    config = {**TINY, "campaign": {**TINY["campaign"], "matrix": {"freeze": [0]}}, "gpu": {"require": True}}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(json.dumps(config))
    plan = subprocess.run(
        [sys.executable, "-m", "campaign", "plan", "--configfile", str(configfile), "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=workflow_env(),
        check=True,
        timeout=300,
    )
    # The main lock's torch needs a newer driver; the older lock's fits it but finds no CUDA device on this machine.
    expected = judge((6, 1), Driver("535.183.01", (12, 2)), TorchBuild.installed())
    assert "0    NVIDIA GeForce GTX 1080" in plan.stdout and f"NO: {expected.problem}" in plan.stdout
    assert "gpu.require is set: every training will stop at once on this server" in plan.stdout

    target = "results/train/yolov8n_b16_img64_freeze0/train.json"
    stopped = snakemake(tmp_path, "--cores", "2", target, config=config, check=False)
    assert stopped.returncode != 0
    logs = "".join(path.read_text() for path in (tmp_path / "logs").rglob("*.log"))
    assert "gpu.require is set, but torch cannot train on this server's GPUs: GPU 0 (NVIDIA GeForce GTX 1080" in logs
    assert expected.fix in logs
    assert not (tmp_path / target).exists()

    config["gpu"]["require"] = False
    snakemake(tmp_path, "--cores", "2", target, config=config)
    train = json.loads((tmp_path / target).read_text())
    assert train["device"] == "cpu"
    assert train["device_fallback"].startswith("trained on the CPU: torch cannot use this server's GPUs: GPU 0")
    assert train["torch"] == torch.__version__ and train["torch_cuda"] == torch.version.cuda
    assert train["torch_architectures"] == torch_architectures() and train["device_capability"] == []
    log = (tmp_path / "logs" / "train" / "yolov8n_b16_img64_freeze0.log").read_text()
    warnings = [line for line in log.splitlines() if " WARNING " in line]
    assert len(warnings) == 1 and warnings[0].endswith("WARNING " + train["device_fallback"])
    provenance = json.loads((tmp_path / "results/train/yolov8n_b16_img64_freeze0/provenance.json").read_text())
    assert provenance["build"]["torch"] == torch.__version__


def test_the_summary_flags_a_configuration_that_fell_back_to_the_cpu(tmp_path):
    from campaign.evaluation.bootstrap import METRICS
    from campaign.reporting.summary import RunFiles, summary_rows

    def write(name: str, content: dict | str) -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return path

    train = {"batch_used": 16, "epochs_run": 1, "best_epoch": 1, "train_seconds": 60.0, "device": "cpu"}
    speed = write(
        "speed.csv",
        "batch,half,format,latency_ms,latency_ms_p10,latency_ms_p90,inference_ms,"
        "throughput_ips,device_name\n1,False,pytorch,9,8,10,7,111,cpu\n",
    )
    files = RunFiles(
        train={
            "fell": write("fell.json", {**train, "device_fallback": "trained on the CPU: ..."}),
            "cpu": write("cpu.json", train),
        },
        provenance={
            name: write("provenance.json", {"args_hash": "a", "dataset_hash": "d", "weights_hash": None})
            for name in ("fell", "cpu")
        },
        speed={"fell": speed, "cpu": speed},
        metrics={(name, "test"): write("metrics.json", dict.fromkeys(METRICS, 0.5)) for name in ("fell", "cpu")},
        intervals={
            (name, "test"): write("intervals.json", {k: {"low": 0.4, "high": 0.6} for k in METRICS})
            for name in ("fell", "cpu")
        },
    )
    rows = summary_rows(
        [{"config": "fell", "batch": 16, "gpus": 1}, {"config": "cpu", "batch": 16, "gpus": 1}], ["test"], files
    )
    assert [row["device_note"] for row in rows] == ["trained on the CPU: torch could not use the GPUs", ""]
    assert [row["gpu_hours"] for row in rows] == [0, 0]
