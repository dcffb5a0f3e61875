"""Run records and locks: only the locks of a run that is gone are ever removed."""

import json
import socket
import subprocess
import time

from campaign.adapters.takeover import main as takeover
from campaign.adapters.takeover import stale_locks
from campaign.planning import runs


def lock(root, number, outputs):
    folder = root / ".snakemake" / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{number}.input.lock").write_text("results/dataset/dataset.yaml\n")
    (folder / f"{number}.output.lock").write_text("".join(f"{path}\n" for path in outputs))


def record(root, host, pid, heartbeat, number, configs):
    folder = root / runs.RUNS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    data = {"host": host, "pid": pid, "started": heartbeat - 100, "heartbeat": heartbeat, "what": "shard"}
    data.update(locks=[f".snakemake/locks/{number}.input.lock", f".snakemake/locks/{number}.output.lock"])
    data.update(configs=configs)
    (folder / f"{host}-{pid}.json").write_text(json.dumps(data))


def test_locks_are_removed_only_where_their_run_is_gone_and_they_touch_the_lost_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    now = time.time()
    lock(tmp_path, 0, ["results/train/a_b8/train.json", "results/eval/a_b8/test/metrics.json"])  # the lost server's
    lock(tmp_path, 1, ["results/train/c_b8/train.json"])  # the live server's
    lock(tmp_path, 2, ["results/summary/metrics.csv"])  # nobody's record
    record(tmp_path, "server-a", 11, now - 3600, 0, ["a_b8"])
    record(tmp_path, "server-b", 22, now - 5, 1, ["c_b8"])
    found = runs.read_runs()
    assert [run.alive(600, now) for run in found] == [False, True]
    remove, blocking = stale_locks(["a_b8"], found, 600)
    assert [pair.number for pair in remove] == ["0"] and blocking == []
    # Taking over the live server's work is blocked by its live locks, which stay.
    remove, blocking = stale_locks(["c_b8"], found, 600)
    assert remove == [] and "server-b (process 22)" in blocking[0]

    assert takeover(["--unlock-stale"]) == 0
    left = sorted(path.name for path in (tmp_path / ".snakemake" / "locks").iterdir())
    assert left == ["1.input.lock", "1.output.lock", "2.input.lock", "2.output.lock"]
    assert [run.host for run in runs.read_runs()] == ["server-b"], "the gone run's record goes with its locks"


def test_a_run_on_this_host_lives_while_its_process_does(tmp_path):
    here = runs.RunRecord(socket.gethostname(), 1, 0.0, 0.0)  # init: always there
    assert here.alive(60, now=1e12), "a local process is asked, not its heartbeat"
    ended = subprocess.Popen(["true"])
    ended.wait()
    assert not runs.RunRecord(socket.gethostname(), ended.pid, 0.0, time.time()).alive(60)
