"""A lost server's shard taken over by the other: refused while it lives, resumed epoch by epoch once it is gone.

As in test_two_servers.py, each "server" is a process tree in its own UTS
namespace with its own host name, on one shared folder. server-a's whole
process group is killed (kill -9, as when a server loses power) during its
training, after its second epoch.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from test_two_servers import unshare_unavailable
from tiny_campaign import ROOT, TINY, snakemake, workflow_env

pytestmark = pytest.mark.slow  # two trainings of 6 epochs, a kill and a takeover

EPOCHS = 6


def on_host(host: str, command: list[str], workdir, **popen) -> subprocess.Popen:
    """`command` in a UTS namespace named `host`, in its own process group."""
    script = f"hostname {host} && exec {' '.join(map(repr, command))}"
    env = {**workflow_env(), "DETECTION_CAMPAIGN_HEARTBEAT_SECONDS": "1"}
    return subprocess.Popen(
        ["unshare", "--uts", "sh", "-c", script], cwd=workdir, env=env, text=True, start_new_session=True, **popen
    )


def epochs_written(results_csv) -> list[int]:
    if not results_csv.is_file():
        return []
    with open(results_csv, newline="") as stream:
        return [int(float(row["epoch"])) for row in csv.DictReader(stream)]


def test_a_lost_server_is_taken_over_and_its_training_resumes_where_it_stopped(tmp_path):
    reason = unshare_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the takeover test as root: {reason}")
        pytest.skip(reason)
    workdir = tmp_path / "shared"
    workdir.mkdir()
    config = {
        "dataset": TINY["dataset"],
        "campaign": {
            "defaults": {**TINY["campaign"]["defaults"], "imgsz": 32, "pretrained": False, "epochs": EPOCHS},
            "matrix": {"batch": [8, 16]},
        },
        "evaluation": {"splits": ["test"], "bootstrap": {"resamples": 10}},
        "speed": {"batch": [1], "cpu_repeats": 5, "warmup": 1, "images": 4, "formats": ["pytorch"]},
        "study": {"imgsz": [32]},
        "detect": {"configs": [], "sources": []},
        "gpu": {"devices": [{"index": 0, "memory_mb": 8000}], "lock_dir": str(workdir / "leases")},
    }
    snakemake(workdir, "--cores", "2", "prepare", config=config)
    base = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir)]
    base += ["--configfile", str(workdir / "config.yaml"), "--cores", "1"]
    takeover = [sys.executable, "-m", "campaign", "takeover", "--configfile", "config.yaml"]
    takeover += ["--shard", "1/2", "--stale-minutes", "0.1", "--", "--cores", "2"]

    server_a = on_host("server-a", [*base, "--config", "shard=1/2"], workdir, stdout=subprocess.DEVNULL)
    trainings = workdir / "results" / "train"
    deadline = time.monotonic() + 600
    lost = None
    while time.monotonic() < deadline and lost is None:
        assert server_a.poll() is None, "server-a ended before it could be killed"
        for folder in trainings.glob("*") if trainings.is_dir() else []:
            if len(epochs_written(folder / "run" / "results.csv")) >= 2:
                lost = folder
        time.sleep(0.5)
    assert lost is not None, "server-a wrote no second epoch in 10 minutes"

    # While server-a lives, server-b may not take its shard.
    refused = on_host("server-b", takeover, workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    said = refused.communicate(timeout=120)[0]
    assert refused.returncode == 2, said
    assert "refused: this work is still alive" in said and "server-a" in said and lost.name in said
    assert server_a.poll() is None, "the refused takeover touched server-a"

    os.killpg(server_a.pid, signal.SIGKILL)  # the server loses power
    server_a.wait()
    done_before = epochs_written(lost / "run" / "results.csv")
    assert 2 <= len(done_before) < EPOCHS
    locks = list((workdir / ".snakemake" / "locks").glob("*.lock"))
    assert locks, "the killed run should have left its locks"
    time.sleep(8)  # more than --stale-minutes 0.1

    server_b = on_host("server-b", takeover, workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    said = server_b.communicate(timeout=1200)[0]
    assert server_b.returncode == 0, said[-4000:]
    assert "removing the gone run's locks" in said and "shard 1/2 on server-a" in said

    summary = json.loads((lost / "train.json").read_text())
    assert summary["host"] == "server-b" and summary["epochs_run"] == EPOCHS
    assert epochs_written(lost / "run" / "results.csv") == list(range(1, EPOCHS + 1)), "each epoch once"
    attempts = [json.loads(line) for line in (lost / "run.attempts.jsonl").read_text().splitlines()]
    assert attempts[-1]["epochs_before"] == len(done_before), "resumed, not restarted"

    # The rest on server-b too, then the tables: every configuration trained, each by one host in the end.
    final = on_host("server-b", base, workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    said = final.communicate(timeout=1500)[0]
    assert final.returncode == 0, said[-4000:]
    with open(workdir / "results" / "summary" / "metrics.csv", newline="") as stream:
        assert len(list(csv.DictReader(stream))) == 2
    for folder in trainings.iterdir():
        if folder.is_dir():
            assert epochs_written(folder / "run" / "results.csv") == list(range(1, EPOCHS + 1)), folder.name
    assert not list((workdir / ".snakemake" / "campaign-runs").glob("*.json")), "every run record is gone"
