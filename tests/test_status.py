"""The status view: a job on this host is asked, a job on another host is judged by its writes."""

import json
import os
import socket
import time

from campaign.reporting.status import config_status, status_table
from campaign.reporting.status_page import estimate_progress
from campaign.training.run_folder import TrainingFolder


def started_job(root, name, host, pid, written_ago):
    folder = TrainingFolder.of(name, root)
    folder.run.mkdir(parents=True)
    folder.live_monitor.parent.mkdir()
    folder.job_record.write_text(json.dumps({"host": host, "pid": pid, "since": 0, "device": "cuda:0"}))
    folder.epochs.write_text("epoch,time\n1,60\n2,120\n")
    folder.live_monitor.write_text("time,host,device,utilization,memory_mb,power_w,temperature_c\n")
    written = time.time() - written_ago
    for path in (folder.job_record, folder.epochs, folder.live_monitor):
        os.utime(path, (written, written))


def test_a_job_on_another_host_runs_while_it_writes_and_is_stale_after(tmp_path):
    started_job(tmp_path, "busy", "server-b", 1, written_ago=5)
    started_job(tmp_path, "silent", "server-b", 1, written_ago=3600)
    busy = config_status(tmp_path, "busy", epochs=10)
    silent = config_status(tmp_path, "silent", epochs=10, stale_after=600)
    assert busy.state == "running" and busy.device == "server-b cuda:0"
    # Its time left from its own epochs as it writes them: 60 s each, 8 of 10 to go.
    assert estimate_progress([busy], {"busy": 1.0}, tmp_path, tmp_path / "logs")[0].remaining_seconds == 480
    assert silent.state == "stale" and silent.device == "server-b cuda:0"
    assert "no write from server-b since" in silent.note
    assert "1 running, 1 stale" in status_table([busy, silent])


def test_a_dead_job_on_this_host_failed_and_a_live_one_runs(tmp_path):
    finished = os.fork()
    if finished == 0:
        os._exit(0)
    os.waitpid(finished, 0)  # a pid that existed and is gone
    started_job(tmp_path, "dead", socket.gethostname(), finished, written_ago=5)
    started_job(tmp_path, "alive", socket.gethostname(), os.getpid(), written_ago=3600)
    assert config_status(tmp_path, "dead", epochs=10).state == "failed"
    # On this host the process is asked, however long it has been quiet.
    assert config_status(tmp_path, "alive", epochs=10, stale_after=600).state == "running"
