"""A real training killed mid-run resumes; a real memory error is retried with a smaller batch."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tiny_campaign import ROOT, TINY, snakemake, workflow_env

pytestmark = pytest.mark.slow  # real trainings killed and resumed

NAME = "yolov8n_b16_img64_freeze0"
SINGLE = {
    **TINY,
    "pretrain": {"models": []},
    "detect": {},
    "campaign": {
        "defaults": {
            "model": "yolov8n",
            "batch": 16,
            "imgsz": 64,
            "freeze": 0,
            "epochs": 4,
            "workers": 0,
            "pretrained": False,
            "args": TINY["campaign"]["defaults"]["args"],  # no plots, as TINY
        }
    },
}


def status(workdir: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "campaign", "status", "--configfile", "config.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def epochs(workdir: Path) -> list[int]:
    path = workdir / f"results/train/{NAME}/run/results.csv"
    if not path.is_file():
        return []
    return [int(float(row["epoch"])) for row in csv.DictReader(open(path))]


def test_a_killed_training_resumes_and_runs_each_epoch_once(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(SINGLE))
    target = f"results/train/{NAME}/train.json"
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2", target]
    env = workflow_env()
    campaign = subprocess.Popen(
        command, cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 300
        while len(epochs(tmp_path)) < 2 and time.monotonic() < deadline and campaign.poll() is None:
            time.sleep(0.2)
        assert len(epochs(tmp_path)) >= 2, "training did not get going"
        running = status(tmp_path)
        assert "running" in running and NAME in running
    finally:
        if campaign.poll() is None:
            os.killpg(campaign.pid, signal.SIGKILL)  # the whole session: Snakemake and its training job
        campaign.wait()
    done_before = epochs(tmp_path)
    assert len(done_before) < 4, "training finished before it could be killed"
    assert not (tmp_path / target).exists()
    assert "failed" in status(tmp_path)

    # A killed Snakemake leaves its working-directory lock behind: lift it, as a user would.
    snakemake(tmp_path, "--unlock")
    snakemake(tmp_path, "--cores", "2", target)
    assert epochs(tmp_path) == [1, 2, 3, 4]
    summary = json.loads((tmp_path / target).read_text())
    assert summary["epochs_run"] == 4 and summary["start"] == "resume"
    # kill -9 is no sign of memory exhaustion: every epoch at the configured batch.
    killed, *_ = summary["attempts"]
    assert killed["out_of_memory"] is False and "no sign of memory exhaustion" in killed["error"]
    assert {attempt["batch"] for attempt in summary["attempts"]} == {16}
    assert summary["batch_used"] == 16 and summary["epochs_by_batch"] == {"16": 4}
    assert summary["batch_reduced"] is False
    log = (tmp_path / f"logs/train/{NAME}.log").read_text()
    assert "resuming the interrupted run" in log
    assert "done" in status(tmp_path)


def out_of_memory_config(tmp_path: Path, policy: str) -> dict:
    """One training on a declared 3000 MB device: batch 64 at 320 px needs more than torch leaves, 16 does not."""
    config = json.loads(json.dumps(SINGLE))
    config["campaign"]["defaults"].update(batch=64, imgsz=320, epochs=1, args={"fraction": 0.25})
    config["gpu"] = {
        "devices": [{"index": 0, "memory_mb": 3000}],
        "min_free_mb": 1000,
        "lock_dir": str(tmp_path / "locks"),
    }
    config["training"] = {"on_out_of_memory": policy}
    return config


def test_running_out_of_memory_is_retried_with_a_smaller_batch(tmp_path):
    """Declared devices give a CPU job their memory as its budget: a real allocation failure."""
    config = out_of_memory_config(tmp_path, "halve")
    name = "yolov8n_b64_img320_freeze0"
    target = f"results/train/{name}/train.json"
    snakemake(tmp_path, "--cores", "2", target, config=config)
    summary = json.loads((tmp_path / target).read_text())
    assert summary["batch_used"] < 64
    first, *retries = summary["attempts"]
    # Out of memory, as an exception or (None) as an allocator's abort that left no word.
    assert first["batch"] == 64 and first["out_of_memory"] is not False, first["error"]
    assert retries and retries[-1]["error"] is None
    # The batch the model was trained with; a later attempt may only collect a finished run.
    assert summary["batch_used"] in {attempt["batch"] for attempt in retries}
    log = (tmp_path / f"logs/train/{name}.log").read_text()
    assert f"batch reduced from 64 to {retries[-1]['batch']}: an earlier attempt ran out of memory" in log
    # Each smaller batch follows a (possible) memory failure: half the smallest batch that failed.
    for earlier, later in zip(summary["attempts"], retries):
        halved = earlier["out_of_memory"] is not False
        assert later["batch"] == (earlier["batch"] // 2 if halved else earlier["batch"])


def test_a_shared_training_over_its_share_runs_out_of_memory_and_is_halved(tmp_path):
    """With gpu.pack, a training shares an 8 GB declared device with a 3000 MB need: its share is its budget."""
    config = out_of_memory_config(tmp_path, "halve")
    name = "yolov8n_b64_img320_freeze0"
    config["gpu"].update(devices=[{"index": 0, "memory_mb": 8192}], pack=True, max_share=2, needs_mb={name: 3000})
    target = f"results/train/{name}/train.json"
    snakemake(tmp_path, "--cores", "2", target, config=config)
    summary = json.loads((tmp_path / target).read_text())
    first, *retries = summary["attempts"]
    assert first["batch"] == 64 and first["out_of_memory"] is not False, first["error"]
    assert summary["batch_used"] < 64 and summary["batch_used"] in {attempt["batch"] for attempt in retries}
    log = (tmp_path / f"logs/train/{name}.log").read_text()
    assert "memory limited to 3000 MB" in log  # its share, not the device's 8192 MB
    assert f"batch reduced from 64 to {retries[-1]['batch']}: an earlier attempt ran out of memory" in log


def test_on_out_of_memory_fail_stops_with_the_plan_s_advice(tmp_path):
    target = "results/train/yolov8n_b64_img320_freeze0/train.json"
    result = snakemake(tmp_path, "--cores", "2", target, config=out_of_memory_config(tmp_path, "fail"), check=False)
    assert result.returncode != 0 and not (tmp_path / target).exists()
    log = (tmp_path / "logs/train/yolov8n_b64_img320_freeze0.log").read_text()
    assert "training.on_out_of_memory is `fail`" in log and "campaign plan --probe" in log
    attempts = [
        json.loads(line) for line in (tmp_path / "results/train/yolov8n_b64_img320_freeze0/run.attempts.jsonl").open()
    ]
    assert {a["batch"] for a in attempts} == {64}  # nothing trained at a smaller batch


def test_on_out_of_memory_restart_trains_every_epoch_at_the_smaller_batch(tmp_path):
    target = "results/train/yolov8n_b64_img320_freeze0/train.json"
    snakemake(tmp_path, "--cores", "2", target, config=out_of_memory_config(tmp_path, "restart"))
    summary = json.loads((tmp_path / target).read_text())
    assert summary["batch_used"] < 64 and summary["batch_reduced"] is True
    assert list(summary["epochs_by_batch"]) == [str(summary["batch_used"])]  # one batch size for every epoch
    assert list((tmp_path / "results/train/yolov8n_b64_img320_freeze0").glob("run.batch64-*"))


def test_memory_failures_are_told_apart_from_other_errors():
    import torch

    from campaign.training.attempts import is_out_of_memory

    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes"))
    assert is_out_of_memory(RuntimeError("could not create a primitive"))
    assert not is_out_of_memory(RuntimeError("Dataset 'dataset.yaml' error: images not found"))


def test_only_running_out_of_memory_makes_the_batch_smaller():
    from campaign.training.attempts import batch_after_memory_failures

    def attempt(batch, out_of_memory, error="..."):
        return {"batch": batch, "out_of_memory": out_of_memory, "error": error}

    assert batch_after_memory_failures(64, []) == 64
    # Interrupted (scancel, preemption, SSH) or a bug: resumed with the same batch.
    assert batch_after_memory_failures(64, [attempt(64, False), attempt(64, False)]) == 64
    assert batch_after_memory_failures(64, [attempt(64, True)]) == 32
    assert batch_after_memory_failures(64, [attempt(64, True), attempt(32, False)]) == 32
    assert batch_after_memory_failures(64, [attempt(64, True), attempt(32, True)]) == 16
    # Ended without a word and no evidence of memory exhaustion (kill -9, a lost node): the batch stays.
    assert batch_after_memory_failures(64, [attempt(64, True), attempt(32, False)]) == 32
    assert batch_after_memory_failures(64, [attempt(64, None)]) == 64  # history written before evidence counted
    # A finished attempt is no failure, whatever else it says.
    assert batch_after_memory_failures(64, [attempt(64, None, error=None)]) == 64
    # Never below one image per GPU, never above the configured batch.
    assert batch_after_memory_failures(4, [attempt(2, True)], smallest=2) == 2
    assert batch_after_memory_failures(16, [attempt(64, True)]) == 16


def test_an_attempt_that_ended_without_a_word_is_recorded_by_the_next(tmp_path):
    from campaign.training.attempts import begin_attempt, earlier_attempts, record_attempt, record_silent_end
    from campaign.training.run_folder import TrainingFolder

    run = TrainingFolder(tmp_path)
    begin_attempt(run, {"args_hash": "key", "batch": 32})
    # ... killed here: nothing more was written. The next attempt starts:
    record_silent_end(run)
    (silent,) = earlier_attempts(run, "key")
    assert silent["batch"] == 32 and silent["out_of_memory"] is False and "without a word" in silent["error"]
    begin_attempt(run, {"args_hash": "key", "batch": 16})
    record_attempt(run, {"args_hash": "key", "batch": 16, "error": None, "out_of_memory": False})
    record_silent_end(run)  # nothing under way any more
    assert [a["batch"] for a in earlier_attempts(run, "key")] == [32, 16]


def test_a_termination_signal_interrupts_the_training_where_it_can_be_recorded():
    from campaign.training.attempts import Interrupted, interrupts_raised, memory_failure

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted, match="SIGTERM"):
        with interrupts_raised():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
    assert signal.getsignal(signal.SIGTERM) == before
    # Under nohup SIGHUP is ignored, and stays so.
    ignored = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with interrupts_raised():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, ignored)
    assert memory_failure(Interrupted("SIGHUP")) is False
    # A DDP worker's failure is memory only where its stderr said so.
    worker_failed = subprocess.CalledProcessError(1, ["torch.distributed.run"])
    assert memory_failure(worker_failed) is False
    assert memory_failure(worker_failed, "torch.OutOfMemoryError: CUDA out of memory") is True


def test_an_abort_that_said_it_ran_out_of_memory_counts_as_memory(tmp_path):
    """An allocator that aborts in C++ leaves no exception, only its words on stderr."""
    from campaign.training.attempts import begin_attempt, earlier_attempts, record_silent_end
    from campaign.training.memory_evidence import stderr_copied_to
    from campaign.training.run_folder import TrainingFolder

    run = TrainingFolder(tmp_path)
    with stderr_copied_to(run.stderr_copy) as offset:
        begin_attempt(run, {"args_hash": "key", "batch": 32}, offset)
        os.write(2, b"terminate called after throwing an instance of 'std::bad_alloc'\n")
    record_silent_end(run)
    (silent,) = earlier_attempts(run, "key")
    assert silent["out_of_memory"] is True and "std::bad_alloc" in silent["error"]
    # The next attempt's part of the copy starts after it: old words are not read again.
    with stderr_copied_to(run.stderr_copy) as offset:
        begin_attempt(run, {"args_hash": "key", "batch": 16}, offset)
        os.write(2, b"Killed\n")
    record_silent_end(run)
    assert earlier_attempts(run, "key")[-1]["out_of_memory"] is False
    with stderr_copied_to(run.stderr_copy) as offset:  # Rust's allocator (Polars) aborting
        begin_attempt(run, {"args_hash": "key", "batch": 16}, offset)
        os.write(2, b"memory allocation of 24 bytes failed\n")
    record_silent_end(run)
    assert earlier_attempts(run, "key")[-1]["out_of_memory"] is True


def test_out_of_memory_kills_are_read_from_the_innermost_cgroup_that_remains(tmp_path):
    from campaign.training.memory_evidence import oom_kill_counts, oom_kills_since

    job = tmp_path / "memory" / "slurm" / "job_7"
    job.mkdir(parents=True)
    for folder, kills in ((tmp_path / "memory", 5), (tmp_path / "memory" / "slurm", 2), (job, 0)):
        (folder / "memory.oom_control").write_text(f"oom_kill_disable 0\nunder_oom 0\noom_kill {kills}\n")
    counts = oom_kill_counts(tmp_path, "4:memory:/slurm/job_7\n1:cpu:/\n")
    assert [count for _, count in counts] == [0, 2, 5]  # innermost first
    assert oom_kills_since(counts) == 0
    (job / "memory.oom_control").write_text("oom_kill 1\n")
    assert oom_kills_since(counts) == 1
    (job / "memory.oom_control").unlink()  # the scheduler removed the dead job's cgroup
    (tmp_path / "memory" / "slurm" / "memory.oom_control").write_text("oom_kill 3\n")
    assert oom_kills_since(counts) == 1
    v2 = tmp_path / "v2"
    (v2 / "user.slice").mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("memory\n")
    (v2 / "user.slice" / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    assert [count for _, count in oom_kill_counts(v2, "0::/user.slice\n")] == [1]


def memory_cgroup(tmp_path: Path) -> tuple[Path, str]:
    """A fresh memory cgroup below this process's own (root only), and its limit file's name."""
    from campaign.training.memory_evidence import CGROUP_ROOT, _counter_files

    innermost = _counter_files(CGROUP_ROOT, Path("/proc/self/cgroup").read_text())
    own = next((f.parent for f in innermost if f.parent.is_dir()), None)
    problem = "not root" if os.geteuid() != 0 else "no writable memory cgroup" if own is None else None
    if problem is None:
        group = own / f"test-oom-{os.getpid()}-{tmp_path.name}"
        try:
            group.mkdir()
        except OSError as error:
            problem = f"cannot create a memory cgroup: {error}"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the out-of-memory kill test as root with a memory cgroup: {problem}")
        pytest.skip(f"the out-of-memory kill test needs a memory cgroup: {problem}")
    limit = "memory.limit_in_bytes" if (group / "memory.limit_in_bytes").exists() else "memory.max"
    return group, limit


def test_an_out_of_memory_kill_by_the_kernel_makes_the_batch_smaller(tmp_path):
    """The kernel's OOM killer ends the training without a word; its cgroup's count is the evidence."""
    group, limit = memory_cgroup(tmp_path)
    # Snakemake itself holds about 150 MB, a training job on the CPU grows from 170 MB to 1 GB:
    # in 700 MB the kernel kills the training (the largest process) once it has started.
    (group / limit).write_text(str(700 * 2**20))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(SINGLE))
    target = f"results/train/{NAME}/train.json"
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2", target]
    env = workflow_env()
    counter = group / ("memory.oom_control" if limit == "memory.limit_in_bytes" else "memory.events")
    try:
        limited = subprocess.run(
            command,
            cwd=tmp_path,
            env=env,
            preexec_fn=lambda: (group / "cgroup.procs").write_text(str(os.getpid())),
            capture_output=True,
            timeout=600,
        )
        kills = int(next(line.split()[1] for line in counter.read_text().splitlines() if line.startswith("oom_kill ")))
    finally:
        for _ in range(50):  # the killed processes leave the group as they are reaped
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)
    assert limited.returncode != 0 and kills > 0, "the kernel killed nothing"
    snakemake(tmp_path, "--cores", "2", target)  # no limit now
    summary = json.loads((tmp_path / target).read_text())
    first = summary["attempts"][0]
    assert first["batch"] == 16 and first["out_of_memory"] is True, first["error"]
    assert "out-of-memory killer" in first["error"]
    assert summary["batch_used"] < 16 and summary["batch_reduced"] is True
    assert sum(summary["epochs_by_batch"].values()) == 4


def test_epochs_by_batch_follow_the_run_back_to_its_fresh_start():
    from campaign.training.attempts import epochs_by_batch

    def attempt(batch, before, done):
        return {"batch": batch, "batch_trained": batch, "epochs_before": before, "epochs_done": done}

    # Killed after 2 epochs, resumed to 4 at the same batch.
    assert epochs_by_batch([attempt(16, 0, 2), attempt(16, 2, 4)]) == {"16": 4}
    # Halved after running out of memory in epoch 3: resumed at 8.
    assert epochs_by_batch([attempt(16, 0, 2), attempt(8, 2, 4)]) == {"16": 2, "8": 2}
    # Restarted afresh at 16 after an epoch at 32: only the new run counts.
    assert epochs_by_batch([attempt(64, 0, 0), attempt(32, 0, 1), attempt(16, 0, 1)]) == {"16": 1}
