"""Two servers, one campaign: shards run at the same time in one shared folder, each under its own host name.

Each "server" is a Snakemake process in its own UTS namespace (`unshare
--uts`, as root) with its own host name, on one results folder: what two
machines with a synced home folder look like to the workflow.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tiny_campaign import ROOT, TINY, planned_jobs, snakemake, workflow_env

pytestmark = pytest.mark.slow  # four trainings in two concurrent workflow runs

HOSTS = ["server-a", "server-b"]


def unshare_unavailable() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "--uts", "hostname", "probe"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a UTS namespace (root needed): {probe.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory):
    reason = unshare_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the two-server test as root: {reason}")
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("shared-folder")
    config = {
        "dataset": TINY["dataset"],
        "campaign": {
            "defaults": {
                **TINY["campaign"]["defaults"],
                "imgsz": 32,
                "pretrained": False,
                "replicates": 2,
            },
            "matrix": {"batch": [8, 16]},
        },
        "speed": {"batch": [1], "cpu_repeats": 5, "warmup": 1, "images": 4},
        "study": {"imgsz": [32]},
        "detect": {"configs": [], "sources": []},
        # Two GPUs, rehearsed on the CPU (declared devices): every job leases one.
        "gpu": {
            "devices": [{"index": 0, "memory_mb": 8000}, {"index": 1, "memory_mb": 8000}],
            "lock_dir": str(workdir / "leases"),
        },
    }
    snakemake(workdir, "--cores", "2", "prepare", config=config)
    servers = []
    for index, host in enumerate(HOSTS, start=1):
        command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir)]
        command += ["--configfile", str(workdir / "config.yaml"), "--cores", "1", "--config", f"shard={index}/2"]
        script = f"hostname {host} && exec {' '.join(map(repr, command))}"
        servers.append(
            subprocess.Popen(
                ["unshare", "--uts", "sh", "-c", script],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=workflow_env(),
                start_new_session=True,
            )
        )
    outputs = [server.communicate(timeout=1500)[0] for server in servers]
    for host, server, output in zip(HOSTS, servers, outputs):
        assert server.returncode == 0, f"{host}:\n{output[-4000:]}"
    return workdir, config, outputs


def test_each_server_trained_its_own_shard_once(two_servers):
    workdir, config, outputs = two_servers
    names = sorted(path.name for path in (workdir / "results" / "train").iterdir() if path.is_dir())
    assert len(names) == 4
    trained_on = {}
    for name in names:
        folder = workdir / "results" / "train" / name
        summary = json.loads((folder / "train.json").read_text())
        trained_on[name] = summary["host"]
        attempts = (folder / "run.attempts.jsonl").read_text().splitlines()
        assert len(attempts) == 1, f"{name} trained {len(attempts)} times"
        with open(folder / "monitor.csv", newline="") as stream:
            assert {row["host"] for row in csv.DictReader(stream)} == {summary["host"]}, name
        provenance = json.loads((folder / "provenance.json").read_text())
        assert provenance["host"] == summary["host"]
    # Balanced: two trainings on each server, and no job of one server ran on the other.
    assert sorted(trained_on.values()) == sorted(HOSTS * 2)
    for host, output in zip(HOSTS, outputs):
        jobs_for = set(re.findall(r"wildcards: cfg=([^,\s]+)", output))
        assert jobs_for == {name for name, where in trained_on.items() if where == host}, host


def test_the_final_run_trains_nothing_and_summarises_both_servers(two_servers):
    workdir, config, _ = two_servers
    planned = {rule for rule, _ in planned_jobs(workdir, config)}
    # Each server timed its own networks; the final run reads the recorded split and times nothing again.
    done_on_a_server = {"train", "evaluate", "bootstrap", "latency", "speed", "imgsz_study"}
    assert not planned & (done_on_a_server | {"clean_dataset", "resize_dataset"})
    timed = sorted(path.stem for path in (workdir / "results" / "latency").glob("*.csv"))
    hosts = {
        json.loads((workdir / "results" / "latency" / f"{name}.provenance.json").read_text())["host"] for name in timed
    }
    assert len(timed) == 2 and hosts == set(HOSTS), timed
    snakemake(workdir, "--cores", "2", config=config)
    with open(workdir / "results" / "summary" / "metrics.csv", newline="") as stream:
        assert len(list(csv.DictReader(stream))) == 4
    with open(workdir / "results" / "summary" / "device_usage.csv", newline="") as stream:
        usage = list(csv.DictReader(stream))
    assert {row["host"] for row in usage} == set(HOSTS)
    assert all(row["device"].split()[0] in HOSTS for row in usage)
    groups = list(csv.DictReader(open(workdir / "results" / "summary" / "groups.csv")))
    assert [row["runs"] for row in groups] == ["2", "2"]


def test_a_shard_before_the_shared_data_exists_says_what_to_run(tmp_path):
    config = {**TINY, "campaign": {"defaults": {**TINY["campaign"]["defaults"], "pretrained": False}}}
    result = snakemake(tmp_path, "-n", "--config", "shard=1/2", config=config, check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0
    assert "run `snakemake --cores N" in message and "prepare` once" in message
    assert "results/dataset/dataset.yaml" in message
    assert not Path(tmp_path / "results").exists()
