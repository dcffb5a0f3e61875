"""The campaign on a real SLURM node through snakemake-executor-plugin-slurm and profiles/slurm.

One run of a tiny campaign (three trainings of 2 GPUs each on a node of 4)
answers every question: each job went through SLURM, no more GPUs were held
at once than the node has, the lease inside a job used the GPUs SLURM gave,
and a training killed by `scancel` is retried by Snakemake and resumes from
its last epoch.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from slurm_node import GPUS, JobWatcher, SlurmNode, kill_leftovers, unavailable_reason
from tiny_campaign import workflow_env

pytestmark = pytest.mark.slow  # a real SLURM node

ROOT = Path(__file__).resolve().parents[1]
KILLED = "yolov8n_b8_img32_freeze0_ep4"
CAMPAIGN = {
    "dataset": {
        "raw": str(ROOT / "demo" / "raw"),
        "classes": ["glasses", "lentils", "ring"],
        "class_map": {"delta": {0: "lentils", 1: "glasses", 2: "ring"}},
        "resize": False,  # one job fewer: every job here is a SLURM job, and the copy is tested elsewhere
    },
    "evaluation": {"splits": ["test"]},
    "campaign": {
        "defaults": {
            "model": "yolov8n",
            "batch": 8,
            "imgsz": 32,
            "freeze": 0,
            "epochs": 1,
            "workers": 0,
            "pretrained": False,
            "gpus": 2,
            "args": {"plots": False},  # seconds a training that no test here reads
        },
        "matrix": {"batch": [8, 16]},
        # Long enough to be killed after its first epoch.
        "extra": [{"epochs": 4}],
    },
    "speed": {"batch": [1], "cpu_repeats": 5, "warmup": 1, "images": 4},
    "study": {"imgsz": [32]},
    "detect": {"configs": [], "sources": []},
}
CONFIGS = ["yolov8n_b8_img32_freeze0", "yolov8n_b16_img32_freeze0", KILLED]
TARGET = "results/summary/metrics.csv"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the SLURM test: {reason}")
        pytest.skip(reason)
    node = SlurmNode(tmp_path_factory.mktemp("slurm"))
    try:
        yield node.start()
    finally:
        node.stop()


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        "--workflow-profile",
        str(ROOT / "profiles" / "slurm"),
        *args,
    ]


def planned_jobs(workdir: Path) -> dict[str, str]:
    """{SLURM job comment (rule and wildcards): rule} of every job a dry-run plans."""
    from campaign.planning.plan import dry_run_jobs

    comments = {}
    options = ["-d", str(workdir), "--configfile", str(workdir / "config.yaml")]
    for job in dry_run_jobs([*options, "--workflow-profile", str(ROOT / "profiles" / "slurm"), TARGET]):
        values = [part.split("=", 1)[1] for part in job["wildcards"].split(", ")] if job["wildcards"] else []
        comments["_".join([f"rule_{job['rule']}", *(["wildcards", *values] if values else [])])] = job["rule"]
    return comments


def cancel_after_first_epoch(workdir: Path, watcher: JobWatcher, process: subprocess.Popen, timeout: float = 600):
    """scancel the killed configuration's training once it has saved an epoch; return its SLURM job id."""
    last = workdir / f"results/train/{KILLED}/run/weights/last.pt"
    comment = f"rule_train_wildcards_{KILLED}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if last.is_file():
            running = [s.job_id for s in watcher.samples[-50:] if s.comment == comment and s.state == "RUNNING"]
            if running:
                subprocess.run(["scancel", str(running[-1])], check=True)
                return running[-1]
        time.sleep(0.2)
    raise AssertionError(f"{KILLED} never saved an epoch while running under SLURM")


@pytest.fixture(scope="module")
def campaign_on_slurm(slurm, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm-campaign")
    (workdir / "config.yaml").write_text(yaml.safe_dump(CAMPAIGN))
    expected = planned_jobs(workdir)
    options = [
        # A test cannot wait the plugin's default 40 s before its first look at the queue,
        # nor Snakemake's 10 s between looks: each finished job would idle that long.
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--seconds-between-status-checks",
        "1",
        # Without slurmdbd, sacct has nothing to answer; squeue sees jobs for MinJobAge (300 s).
        "--slurm-status-command",
        "squeue",
        TARGET,
    ]
    env = workflow_env()
    log = workdir / "snakemake.out"
    with JobWatcher() as watcher, open(log, "w") as output:
        process = subprocess.Popen(
            snakemake_command(workdir, *options), stdout=output, stderr=subprocess.STDOUT, cwd=workdir, env=env
        )
        try:
            cancelled = cancel_after_first_epoch(workdir, watcher, process)
            returncode = process.wait(timeout=1200)
        finally:
            if process.poll() is None:
                process.kill()
    yield {
        "workdir": workdir,
        "returncode": returncode,
        "output": log.read_text(),
        "watcher": watcher,
        "expected": expected,
        "cancelled": cancelled,
        "slurm": slurm,
    }
    kill_leftovers(workdir)


def test_the_campaign_completes_on_slurm(campaign_on_slurm):
    run = campaign_on_slurm
    assert run["returncode"] == 0, run["output"][-5000:]
    assert (run["workdir"] / TARGET).is_file()


def test_every_job_went_through_slurm(campaign_on_slurm):
    run = campaign_on_slurm
    # Only the tables and figures run beside Snakemake (the Snakefile's localrules).
    local = set(re.findall(r"^localrule (\w+):", run["output"], re.MULTILINE))
    assert local and all(rule == "summary_table" or rule.startswith("figure_") for rule in local), local
    expected = {comment for comment, rule in run["expected"].items() if rule not in local}
    assert len(expected) >= 10
    completed = {s.comment for s in run["watcher"].samples if s.state == "COMPLETED"}
    assert expected <= completed, f"never completed in SLURM: {sorted(expected - completed)}"
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", run["output"])
    seen = {s.job_id for s in run["watcher"].samples}
    assert submitted and {int(job) for job in submitted} <= seen


def test_never_more_gpus_at_once_than_the_node_has(campaign_on_slurm):
    # Three 2-GPU trainings ask for 6 GPUs at once: the node's 4 must have been the limit.
    assert campaign_on_slurm["watcher"].max_gpus_in_use() == GPUS


def needs_device_indices(campaign_on_slurm, what: str) -> None:
    """Skip (fail in CI) where SLURM exports no device indices: the checks below would see none."""
    if not campaign_on_slurm["slurm"].device_files:
        reason = "this machine refused device nodes: the stand-in GPUs are plain files, SLURM exports no indices"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must check {what}: {reason}")
        pytest.skip(reason)


def test_no_gpu_is_held_by_two_jobs_at_once(campaign_on_slurm):
    needs_device_indices(campaign_on_slurm, "which GPU each SLURM job held")
    watcher = campaign_on_slurm["watcher"]
    # Indices were seen for every running GPU job, so "no index held twice" says something.
    running = [s for s in watcher.samples if s.state == "RUNNING" and s.gpus]
    assert running and all(len(s.gpu_indices) == s.gpus for s in running)
    assert watcher.shared_gpus() == []  # by device index


def test_the_lease_inside_a_job_uses_the_gpus_slurm_gave(campaign_on_slurm):
    needs_device_indices(campaign_on_slurm, "the lease inside SLURM jobs")
    for name in CONFIGS:
        log = (campaign_on_slurm["workdir"] / f"logs/train/{name}.log").read_text()
        assert re.search(r"inside SLURM job \d+: using its devices \[\d+, \d+\]", log), log[-2000:]


def test_a_training_killed_by_slurm_is_retried_and_resumes(campaign_on_slurm):
    workdir = campaign_on_slurm["workdir"]
    cancelled = campaign_on_slurm["cancelled"]
    comment = f"rule_train_wildcards_{KILLED}"
    jobs = {s.job_id: s.state for s in campaign_on_slurm["watcher"].samples if s.comment == comment}
    assert jobs[cancelled] == "CANCELLED"
    assert any(state == "COMPLETED" for job, state in jobs.items() if job > cancelled)
    summary = json.loads((workdir / f"results/train/{KILLED}/train.json").read_text())
    assert summary["start"] == "resume"
    assert summary["epochs_run"] == 4
    # Cancelled is not out of memory: the retry resumed with the batch it had.
    assert summary["batch_used"] == CAMPAIGN["campaign"]["defaults"]["batch"]
