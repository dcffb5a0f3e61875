"""Faults leave the record straight: one trainer per run, causes kept, nothing deleted over a clock.

The first tests exercise each guard alone (seconds); those marked slow put
real faults under real trainings of the workflow: two jobs for one
configuration after a forced unlock, and a disk that fills during training.
"""

import csv
import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from campaign.core.clock import FutureDatedError, check_no_future_files, future_dated
from campaign.core.epoch_table import DamagedEpochTable, read_epoch_table
from campaign.reporting.figures import training_curves
from campaign.reporting.status import config_status, status_table
from campaign.training.attempts import Interrupted, how_it_ended
from campaign.training.disk_space import NoSpaceError, ran_out_of_space, stop_if_still_no_space
from campaign.training.run_folder import TrainingFolder
from campaign.training.training_lock import one_trainer
from tiny_campaign import ROOT, TINY, snakemake, workflow_env

HEADER = "                  epoch,                  time,   metrics/mAP50-95(B),        train/box_loss"


def epoch_table(path: Path, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def test_a_damaged_epoch_table_is_named_with_its_line_and_column(tmp_path):
    table = epoch_table(tmp_path / "results.csv", ["1,3.0,0.1,2.5", "2,6.0,0.2,2.4", "3,9.0,garbage,2.3"])
    with pytest.raises(DamagedEpochTable) as caught:
        read_epoch_table(table)
    assert str(caught.value).startswith(f"{table} line 4: metrics/mAP50-95(B) is 'garbage', not a number")
    epoch_table(table, ["1,3.0,0.1,2.5", "2,6.0"])
    with pytest.raises(DamagedEpochTable, match=r"line 3: 2 values under 4 columns"):
        read_epoch_table(table)
    epoch_table(table, ["1,3.0,0.1,2.5", "", "2,6.0,0.2,2.4"])
    assert [row["epoch"] for row in read_epoch_table(table)] == [1.0, 2.0]


def test_status_shows_every_configuration_and_names_the_damaged_table(tmp_path):
    damaged, sound = TrainingFolder.of("a", tmp_path), TrainingFolder.of("b", tmp_path)
    epoch_table(damaged.epochs, ["1,3.0,0.1,2.5", "2,6.0,garbage,2.4"])
    epoch_table(sound.epochs, ["1,3.0,0.1,2.5"])
    table = status_table([config_status(tmp_path, "a", 4), config_status(tmp_path, "b", 4)])
    assert f"{damaged.epochs} line 3: metrics/mAP50-95(B) is 'garbage'" in table
    assert "b " in table and "2 to do" in table


def test_the_status_page_shows_the_others_beside_a_damaged_table(tmp_path):
    from campaign.reporting.status_page import estimate_progress

    damaged, sound = TrainingFolder.of("a", tmp_path), TrainingFolder.of("b", tmp_path)
    epoch_table(damaged.epochs, ["1,3.0,0.1,2.5", "2,6.0,garbage,2.4"])
    epoch_table(sound.epochs, ["1,3.0,0.1,2.5", "2,6.0,0.2,2.4"])
    statuses = [config_status(tmp_path, "a", 4), config_status(tmp_path, "b", 4)]
    progress = estimate_progress(statuses, {"a": 1.0, "b": 1.0}, tmp_path, tmp_path / "logs")
    assert [p.curve for p in progress] == [[], [0.1, 0.2]]
    assert "line 3: metrics/mAP50-95(B) is 'garbage'" in progress[0].status.note


def test_the_training_curves_refuse_a_damaged_table(tmp_path):
    table = epoch_table(tmp_path / "results.csv", ["1,3.0,0.1,2.5", "2,6.0,0.2,oops"])
    with pytest.raises(DamagedEpochTable, match=r"line 3: train/box_loss is 'oops', not a number"):
        training_curves({"a": table}, tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()


def test_files_dated_in_the_future_are_named_with_the_commands_that_fix_them(tmp_path):
    now = time.time()
    (tmp_path / "results" / "pretrain").mkdir(parents=True)
    future = tmp_path / "results" / "pretrain" / "yolov8n.pt"
    future.write_bytes(b"x")
    (tmp_path / "results" / "other.txt").write_text("")  # dated now: fine
    os.utime(future, (now, now + 5 * 365 * 86400))
    assert [path for path, _ in future_dated([tmp_path / "results", tmp_path / "missing"], now)] == [future]
    with pytest.raises(FutureDatedError) as caught:
        check_no_future_files([tmp_path / "results"], now)
    message = str(caught.value)
    assert message.startswith("1 file(s) are dated in the future") and f"`touch -c {future}`" in message
    assert "snakemake --touch" in message
    for index in range(12):
        more = future.with_name(f"{index}.pt")
        more.write_bytes(b"")
        os.utime(more, (now, now + 3600))
    with pytest.raises(FutureDatedError, match=r"13 file\(s\).* and 3 more.*`find .* -newermt now -exec touch -c"):
        check_no_future_files([tmp_path / "results"], now)


def test_how_an_attempt_ended_is_told_apart(tmp_path):
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    full = OSError(errno.ENOSPC, "No space left on device")
    assert how_it_ended(Interrupted("SIGTERM"), None, run) == {"ended": "signal SIGTERM"}
    wrapped = RuntimeError("checkpoint writer failed")
    wrapped.__context__ = full
    ended = how_it_ended(wrapped, None, run)
    assert ended["ended"] == "no space" and "no space left on the disk of" in ended["space"]
    assert how_it_ended(RuntimeError("CUDA out of memory. Tried to allocate"), None, run) == {"ended": "out of memory"}
    assert how_it_ended(ValueError("bad label"), None, run) == {"ended": "exception"}
    # PyTorch's writer on a full disk says only this; the disk's free space then decides.
    torch_says = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    (run / "weights" / "last.pt").write_bytes(b"\0" * 1024)
    assert not ran_out_of_space(torch_says, run)  # plenty of space here for a 1 KB checkpoint


def test_retrying_on_a_disk_that_is_still_full_stops_at_once(tmp_path):
    stop_if_still_no_space([{"ended": "exception"}], tmp_path)
    stop_if_still_no_space([{"ended": "no space", "space_needed_mb": 1}], tmp_path)  # room now: go on
    with pytest.raises(NoSpaceError, match=r"no space left on the disk of .* not retrying"):
        stop_if_still_no_space([{"ended": "no space", "space_needed_mb": 10**12}], tmp_path)


HOLD = """
import logging, sys, time
from campaign.training.run_folder import TrainingFolder
from campaign.training.training_lock import one_trainer
with one_trainer(TrainingFolder.around(__import__("pathlib").Path(sys.argv[1])), "train cfg=a", logging.getLogger()):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_trainer_of_one_run_waits_for_the_first_and_a_killed_one_frees_it(tmp_path, caplog):
    run = tmp_path / "train" / "a" / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        record = json.loads(TrainingFolder.around(run).trainer_lock.read_text())
        assert record["pid"] == holder.pid and record["job"] == "train cfg=a"
        waited = []

        def kill_holder_soon():
            time.sleep(1.5)
            waited.append(True)
            os.kill(holder.pid, signal.SIGKILL)  # the kernel frees the lock of a holder that dies

        threading.Thread(target=kill_holder_soon).start()
        with caplog.at_level(logging.INFO), one_trainer(TrainingFolder.around(run), "train cfg=a", logging.getLogger()):
            assert waited, "the second trainer did not wait for the first"
        assert f"is being trained by train cfg=a on host {os.uname().nodename} (process {holder.pid})" in caplog.text
    finally:
        holder.kill()
        holder.wait()


# Real faults under real trainings of the workflow.
NAME = "yolov8n_b16_img32_freeze0"
ONE = {
    **TINY,
    "pretrain": {"models": []},
    "detect": {},
    "campaign": {
        "defaults": {
            "model": "yolov8n",
            "batch": 16,
            "imgsz": 32,
            "freeze": 0,
            "epochs": 3,
            "pretrained": False,
            "args": TINY["campaign"]["defaults"]["args"],  # no plots, as TINY
        }
    },
}
TARGET = f"results/train/{NAME}/train.json"


def run_epochs(workdir: Path) -> list[int]:
    path = workdir / f"results/train/{NAME}/run/results.csv"
    return [int(float(row["epoch"])) for row in csv.DictReader(open(path))] if path.is_file() else []


def start_campaign(workdir: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "1", TARGET]
    return subprocess.Popen(
        command,
        cwd=workdir,
        env=workflow_env(),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_epochs(workdir: Path, count: int, campaign: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while len(run_epochs(workdir)) < count and time.monotonic() < deadline and campaign.poll() is None:
        time.sleep(0.2)
    assert len(run_epochs(workdir)) >= count, "the training did not get going"


@pytest.mark.slow
def test_two_jobs_for_one_configuration_after_a_forced_unlock_train_it_once(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(ONE))
    first = start_campaign(tmp_path)
    try:
        wait_for_epochs(tmp_path, 1, first)
        snakemake(tmp_path, "--unlock")  # what Snakemake advises when a second run is refused
        second = start_campaign(tmp_path)
        second_output, _ = second.communicate(timeout=600)
        first_output, _ = first.communicate(timeout=600)
    finally:
        for process in (first, locals().get("second")):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert first.returncode == 0 and second.returncode == 0, first_output[-2000:] + second_output[-2000:]
    assert run_epochs(tmp_path) == [1, 2, 3]
    summary = json.loads((tmp_path / TARGET).read_text())
    assert summary["epochs_run"] == 3 and summary["epochs_by_batch"] == {"16": 3}
    assert [attempt["ended"] for attempt in summary["attempts"]] == ["finished"]  # the wait and collection is none
    log = (tmp_path / f"logs/train/{NAME}.log").read_text()
    assert "is being trained by train cfg=" in log and "had already finished; collecting its outputs" in log


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs mounted on the configuration's training folder: a disk that can be filled and given back."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("mounting a tmpfs needs root; CI runs as root")
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "results" / "train" / NAME
    folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(folder)], check=True)
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def keep_full(disk: Path, campaign: subprocess.Popen, filling: threading.Event) -> None:
    """Another process filling the disk: whatever space comes free (a checkpoint rewritten) is taken at once."""
    index = 0
    while filling.is_set() and campaign.poll() is None:
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        if free:
            subprocess.run(["fallocate", "-l", str(free), str(disk / f"filler{index}")], capture_output=True)
            index += 1
        time.sleep(0.005)


@pytest.mark.slow
def test_a_disk_that_fills_during_training_is_said_and_the_rerun_finishes_every_epoch_once(tmp_path, small_disk):
    config = json.loads(json.dumps(ONE))
    config["campaign"]["defaults"]["epochs"] = 5  # room to fill the disk in the middle
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    campaign = start_campaign(tmp_path)
    filling = threading.Event()
    filler = threading.Thread(target=keep_full, args=(small_disk, campaign, filling))
    try:
        wait_for_epochs(tmp_path, 2, campaign)  # epoch 1's checkpoints are whole
        filling.set()
        filler.start()
        output, _ = campaign.communicate(timeout=600)
    finally:
        if campaign.poll() is None:
            os.killpg(campaign.pid, signal.SIGKILL)
        filling.clear()
        if filler.is_alive():
            filler.join()
    assert campaign.returncode != 0, output[-3000:]
    attempts = [json.loads(line) for line in (small_disk / "run.attempts.jsonl").read_text().splitlines()]
    assert attempts[-1]["ended"] == "no space", attempts[-1]
    assert "this run needs about" in attempts[-1]["space"] and attempts[-1]["space_needed_mb"] > 20
    # Snakemake's retries found the disk still full: the last stopped at once, saying why, without training.
    log = (tmp_path / f"logs/train/{NAME}.log").read_text()
    assert "no space left on the disk of" in log and "(the last attempt ran out of space; not retrying)" in log
    assert "attempt started" not in log

    for taken in small_disk.glob("filler*"):  # the disk given back
        taken.unlink()
    snakemake(tmp_path, "--cores", "1", TARGET)
    assert run_epochs(tmp_path) == [1, 2, 3, 4, 5]
    summary = json.loads((tmp_path / TARGET).read_text())
    assert [attempt["ended"] for attempt in summary["attempts"]] == ["no space", "finished"]
    assert summary["start"] == "resume" and summary["attempts"][-1]["epochs_before"] >= 1
    assert summary["epochs_run"] == 5 and summary["epochs_by_batch"] == {"16": 5}


@pytest.mark.slow
def test_a_checkpoint_dated_in_the_future_stops_the_plan_and_outputs_stay(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(TINY))
    finished = tmp_path / "results" / "pretrain" / "yolov8n.pt"
    finished.parent.mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "configs" / "tiny.yaml", finished)
    os.utime(finished, (time.time(), time.time() + 3 * 365 * 86400))
    for args in (["-n"], ["--cores", "1"]):
        result = snakemake(tmp_path, *args, check=False)
        assert result.returncode != 0
        assert "Clock: 1 file(s) are dated in the future" in result.stdout + result.stderr
        assert str(finished.relative_to(tmp_path)) in result.stdout + result.stderr
    assert finished.is_file() and not (tmp_path / "results" / "dataset").exists()


def test_the_attempt_history_keeps_room_for_the_next_record(tmp_path):
    from campaign.training.attempts import RECORD_ROOM, earlier_attempts, make_room_for_record, record_attempt

    folder = TrainingFolder(tmp_path)
    record_attempt(folder, {"args_hash": "a", "ended": "finished"})
    make_room_for_record(folder)  # an attempt starts
    history = folder.attempts
    assert history.stat().st_size > RECORD_ROOM
    assert [a["ended"] for a in earlier_attempts(folder, "a")] == ["finished"]  # blank room is no record
    make_room_for_record(folder)  # the attempt was killed without a word; the next makes room again
    record_attempt(folder, {"args_hash": "a", "ended": "no space"})
    lines = history.read_text().splitlines()
    assert [json.loads(line)["ended"] for line in lines] == ["finished", "no space"]


def test_a_run_beside_a_live_one_is_told_not_to_unlock(tmp_path, monkeypatch):
    from campaign.planning.runs import other_live_runs_notice, start_run

    monkeypatch.chdir(tmp_path)
    assert other_live_runs_notice() is None
    live = subprocess.Popen(["sleep", "30"])
    try:
        record = tmp_path / ".snakemake" / "campaign-runs" / f"{os.uname().nodename}-{live.pid}.json"
        start_run([], ["a"], "shard 1/2")  # this process's own record is no other run
        record.write_text(
            json.dumps(
                {"host": os.uname().nodename, "pid": live.pid, "started": 0, "heartbeat": 0, "what": "shard 2/2"}
            )
        )
        notice = other_live_runs_notice()
        assert notice.startswith(
            f"Another run of the workflow is live in this folder: shard 2/2 on {os.uname().nodename}"
        )
        assert "do not use `snakemake --unlock`" in notice and "shard 1/2" not in notice
    finally:
        live.kill()
        live.wait()
    assert other_live_runs_notice() is None
