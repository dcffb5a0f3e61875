"""The status page: every state and the campaign's end, on a phone's width, in a real browser."""

import csv
import html
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from campaign.core.configurations import expand_campaign
from campaign.reporting.status import config_status
from campaign.reporting.status_page import (
    campaign_end,
    campaign_seconds_left,
    estimate_progress,
    planned_seconds,
    render_page,
)
from campaign.training.run_folder import TrainingFolder
from tiny_campaign import TINY, resolved

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAMPAIGN = {
    "defaults": {"model": "yolov8n", "batch": 16, "imgsz": 64, "freeze": 0, "epochs": 4},
    "matrix": {"batch": [8, 16, 32, 64]},
}


def epochs(folder: TrainingFolder, count: int, seconds_each: float) -> None:
    folder.run.mkdir(parents=True, exist_ok=True)
    rows = [f"{e},{e * seconds_each},{0.1 * e:.2f}" for e in range(1, count + 1)]
    folder.epochs.write_text("epoch,time,metrics/mAP50-95(B)\n" + "\n".join(rows) + "\n")


def campaign_folder(root):
    """Four configurations: one done, one running here, one whose process died, one to do."""
    done, running, failed, todo = sorted(expand_campaign(CAMPAIGN))
    host = socket.gethostname()
    ended = subprocess.Popen(["true"])
    ended.wait()
    for name, pid, count in ((done, None, 4), (running, os.getpid(), 2), (failed, ended.pid, 1)):
        folder = TrainingFolder.of(name, root)
        epochs(folder, count, 30.0)
        folder.job_record.write_text(json.dumps({"host": host, "pid": pid or 1, "since": 0, "device": "cuda:0"}))
        if pid is None:
            batch = expand_campaign(CAMPAIGN)[name].batch
            summary = {"epochs_run": 4, "device": "cuda:0", "batch_used": batch, "batch_configured": batch}
            folder.summary.write_text(json.dumps(summary))
    return done, running, failed, todo


def test_the_campaign_end_counts_every_remaining_epoch_on_the_gpus_there_are(tmp_path):
    done, running, failed, todo = campaign_folder(tmp_path)
    configs = expand_campaign(CAMPAIGN)
    statuses = [config_status(tmp_path, name, run.epochs, run.batch) for name, run in configs.items()]
    assert [s.state for s in statuses] == ["done", "running", "failed", "to do"]
    costs = {name: run.expected_cost() for name, run in configs.items()}
    progress = {p.status.name: p for p in estimate_progress(statuses, costs, tmp_path, tmp_path / "logs")}
    # 30 s an epoch measured: 2 epochs left running, 3 for the failed one (resumes), 4 to do.
    assert progress[running].remaining_seconds == 60 and progress[failed].remaining_seconds == 90
    assert progress[todo].remaining_seconds == 120  # same cost per epoch as the others here
    assert campaign_seconds_left(list(progress.values()), slots=1) == 270
    assert campaign_seconds_left(list(progress.values()), slots=2) == 150  # 60 + 90 on one, 120 on the other


def status_page(tmp_path, campaign: dict, slots: int) -> tuple[Path, str]:
    """`campaign status --html` on the campaign whose results are in tmp_path/work/results: its page and output."""
    config = tmp_path / "work" / "config.yaml"
    # TINY's sections for this matrix: its models pretrained by the workflow, none of its named configurations.
    models = sorted({run.model for run in expand_campaign(campaign).values()})
    sections = {"pretrain": {**TINY["pretrain"], "models": models}, "detect": {**TINY["detect"], "configs": []}}
    config.write_text(json.dumps({**TINY, "campaign": campaign, **sections}))
    page_file = tmp_path / "status.html"
    command = [sys.executable, "-m", "campaign", "status", "--configfile", str(config)]
    command += ["--results", str(tmp_path / "work" / "results"), "--html", str(page_file), "--slots", str(slots)]
    printed = subprocess.run(command, check=True, capture_output=True, text=True, cwd=tmp_path / "work").stdout
    return page_file, printed


def test_the_page_shows_every_state_and_when_the_campaign_ends_in_chromium(tmp_path, browser):
    done, running, failed, todo = campaign_folder(tmp_path / "work" / "results")
    page_file, _ = status_page(tmp_path, CAMPAIGN, slots=2)
    source = page_file.read_text()
    assert "http" not in source.replace('http-equiv="refresh"', ""), "self-contained: nothing fetched"
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.goto(page_file.as_uri())
    text = page.inner_text("body")
    assert "The campaign ends around" in text and "2 training(s) at a time" in text
    for name, state in ((done, "done"), (running, "running"), (failed, "failed"), (todo, "to do")):
        row = page.locator("tr", has_text=name)
        assert row.locator("td.state").inner_text() == state
    assert page.locator("svg.curve").count() == 2  # the curves of the done and the running training
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "no sideways scrolling on a phone"
    page.close()


def test_the_terminal_tells_the_pages_time_left_and_end(tmp_path):
    """One clock: `campaign status` prints each configuration's time left and the campaign's end as the page says."""
    done, running, failed, todo = campaign_folder(tmp_path / "work" / "results")
    page_file, printed = status_page(tmp_path, CAMPAIGN, slots=2)
    page = html.unescape(page_file.read_text())
    on_page = dict(re.findall(r'data-label="configuration">(\w+)<.*?data-label="time left">([^<]*)</td>', page))
    lines = printed.splitlines()
    header, rows = lines[0], {line.split()[0]: line for line in lines[1:5]}
    column = slice(header.index("time left"), header.index("time left") + len("time left"))
    in_terminal = {name: line[column].strip() for name, line in rows.items()}
    assert in_terminal == on_page and on_page[done] == "" and all(on_page[n] for n in (running, failed, todo))
    assert lines[6] == re.search(r'<p class="end">(.*?)</p>', page)[1]
    assert lines[6].startswith("The campaign ends around") and "2 training(s) at a time" in lines[6]


def test_a_page_before_any_epoch_says_it_cannot_tell_yet(tmp_path):
    configs = expand_campaign(CAMPAIGN)
    statuses = [config_status(tmp_path, name, run.epochs) for name, run in configs.items()]
    progress = estimate_progress(statuses, {n: r.expected_cost() for n, r in configs.items()}, tmp_path, tmp_path)
    assert "cannot be estimated yet" in render_page(progress, campaign_end(progress, 1))


def test_the_jobs_after_a_training_are_its_own_not_a_longer_named_configurations(tmp_path):
    from campaign.planning.workload import after_training_seconds

    for rule, file, seconds in (
        ("evaluate", "cfg_val", 10),
        ("evaluate", "cfg_test", 12),
        ("speed", "cfg", 5),
        ("evaluate", "cfg_seed1_val", 100),
        ("speed", "cfg_seed1", 100),
    ):
        (tmp_path / rule).mkdir(exist_ok=True)
        (tmp_path / rule / f"{file}.benchmark.tsv").write_text(f"s\th:m:s\n{seconds}\t0:00:{seconds}\n")
    assert after_training_seconds(tmp_path, "cfg") == 27
    assert after_training_seconds(tmp_path, "cfg_seed1") == 200
    assert after_training_seconds(tmp_path, "other") is None


def benchmark_file(logs, rule: str, stem: str, seconds: float) -> None:
    (logs / rule).mkdir(parents=True, exist_ok=True)
    (logs / rule / f"{stem}.benchmark.tsv").write_text(f"s\th:m:s\n{seconds}\t0:00:00\n")


def test_the_campaign_end_counts_the_jobs_after_the_trainings_before_any_ran(tmp_path):
    """What a training costs besides its epochs prices each job after it until they have run; then their own."""
    done, running, failed, todo = campaign_folder(tmp_path)
    configs = expand_campaign(CAMPAIGN)
    logs = tmp_path / "logs"
    benchmark_file(logs, "train", done, 130)  # 4 epochs of 30 s: 10 s besides them
    statuses = [config_status(tmp_path, name, run.epochs, run.batch) for name, run in configs.items()]
    costs = {name: run.expected_cost() for name, run in configs.items()}
    sections = {"evaluation": {"splits": ["val", "test"]}, "speed": {"formats": ["pytorch", "onnx"]}}
    campaign = resolved(CAMPAIGN, tmp_path, **sections)
    jobs = campaign.benchmark_stems()
    assert jobs[done] == {
        "evaluate": [f"{done}_val", f"{done}_test"],
        "bootstrap": [f"{done}_val", f"{done}_test"],
        "export": [f"{done}_onnx"],
        "latency": [done],  # the four share one network: timed once, on the first by name
        "speed": [done],
        "imgsz_study": [done],
        "detect": [],
    }
    assert jobs[todo]["latency"] == [] and jobs[todo]["speed"] == [todo]
    progress = {p.status.name: p for p in estimate_progress(statuses, costs, tmp_path, logs, jobs)}
    # 8 jobs after the first training at 10 s, one of them (the network's timing) needs the machine alone;
    # 7 after each of the others.
    assert progress[done].remaining_seconds == 80 and progress[done].alone_seconds == 10
    assert progress[running].training_seconds == 60 + 10 and progress[running].remaining_seconds == 70 + 70
    assert progress[running].alone_seconds == 0
    # Two trainings at a time: running (70) then failed (100) on one slot, to do (130) on the other: they end
    # at 170, leaving 40 s of a slot; the jobs beside others (70 + 3 x 70 s) fill it, then run 2 at a time,
    # then the one timing alone.
    assert campaign_seconds_left(list(progress.values()), slots=2, after_slots=2) == 170 + (280 - 40) / 2 + 10

    for stem in (f"{done}_val", f"{done}_test"):
        benchmark_file(logs, "evaluate", stem, 4)
    progress = {p.status.name: p for p in estimate_progress(statuses, costs, tmp_path, logs, jobs)}
    assert progress[done].remaining_seconds == 60  # its evaluations ran
    assert progress[todo].remaining_seconds == 130 + 2 * 4 + 50  # the others' at what the evaluations took


def test_the_page_takes_the_trainings_at_a_time_from_the_live_runs(tmp_path):
    from campaign.planning.runs import jobs_at_a_time, read_runs

    runs = tmp_path / ".snakemake" / "campaign-runs"
    runs.mkdir(parents=True)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": 0, "heartbeat": 0}
    (runs / "gpu.json").write_text(json.dumps({**me, "cores": 16, "gpus": 4}))
    assert jobs_at_a_time(read_runs(tmp_path), stale_after=60) == (4, 4)
    (runs / "cpu.json").write_text(json.dumps({**me, "cores": 8, "gpus": 0}))
    assert jobs_at_a_time(read_runs(tmp_path), stale_after=60) == (5, 12)  # a CPU run: 1 training, 8 jobs after
    for path in runs.iterdir():
        path.write_text(json.dumps({**json.loads(path.read_text()), "pid": 2**22 + 1}))  # no such process
    assert jobs_at_a_time(read_runs(tmp_path), stale_after=60) is None


def course_folder(root):
    """The course's 16 configurations, probed (test_shards.probed_folder), not one epoch trained."""
    from test_shards import COURSE, probed_folder

    configs = expand_campaign(COURSE)
    probed_folder(root, configs, lambda run: {"n": 0.01, "s": 0.02, "m": 0.04, "l": 0.08}[run.size])
    return COURSE, configs


def test_a_page_before_any_epoch_ends_from_the_probes(tmp_path):
    course, configs = course_folder(tmp_path)
    statuses = [config_status(tmp_path, name, run.epochs) for name, run in configs.items()]
    costs = {n: r.expected_cost() for n, r in configs.items()}
    campaign = resolved(course, tmp_path)
    jobs = campaign.benchmark_stems()
    planned = planned_seconds(configs, campaign.config, tmp_path, tmp_path / "logs")
    progress = estimate_progress(statuses, costs, tmp_path, tmp_path / "logs", jobs, planned)
    assert all(p.remaining_seconds and p.basis == "the probes" for p in progress)
    trainings = [planned[name][0] for name in configs]
    left = campaign_seconds_left(progress, slots=4)
    assert max(trainings) < left < sum(seconds for pair in planned.values() for seconds in pair)
    page = render_page(progress, campaign_end(progress, 4))
    assert "The campaign ends around" in page and "Trainings left: 16 from the probes." in page
    # One measured training scales the probes for the others (the plan's calibration).
    first = TrainingFolder.of(next(iter(configs)), tmp_path)
    epochs(first, 2, 2 * planned[first.path.name][0] / configs[first.path.name].epochs)  # twice as slow
    statuses = [config_status(tmp_path, name, run.epochs) for name, run in configs.items()]
    scaled = estimate_progress(statuses, costs, tmp_path, tmp_path / "logs", jobs, planned)
    assert {p.basis for p in scaled[1:]} == {"the probes, scaled by the trainings measured"}
    assert scaled[1].training_seconds == pytest.approx(2 * planned[scaled[1].status.name][0])


def test_the_class_table_shows_every_configuration_by_model_size_on_a_phone(tmp_path, browser):
    course, configs = course_folder(tmp_path / "work" / "results")
    page_file, _ = status_page(tmp_path, course, slots=4)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(page_file.as_uri())
    assert "The campaign ends around" in page.inner_text("p.end")
    rows = page.locator(".matrix tbody th").all_inner_texts()
    assert rows == ["yolov5n", "yolov5s", "yolov5m", "yolov5l"]  # by size, not alphabetically
    for name in configs:
        cell = page.locator(f'.matrix td[title="{name}"]')
        assert cell.count() == 1 and cell.is_visible(), name
        box = cell.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, f"{name} is off the phone's screen: {box}"
        assert "to do" in cell.inner_text() and "left" in cell.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "no sideways scrolling on a phone"
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    page.close()


def test_the_pretrainings_not_run_yet_are_priced_from_the_probes_or_their_epochs_and_come_first(tmp_path):
    from campaign.planning.workload import pretraining_left

    course, configs = course_folder(tmp_path)
    config = resolved(course, tmp_path).config
    config["pretrain"].update(models=["yolov5n", "yolov5x"], images=100, epochs=2, imgsz=640)
    left, waits = pretraining_left(configs, config, tmp_path, tmp_path / "logs")
    # yolov5n's unfrozen probe: 0.01 s an image at 320 px, so 0.04 s at 640 px, for 100 images and 2 epochs;
    # yolov5x has no probe to price it with, and is not counted.
    assert left == {"pretrain yolov5n": pytest.approx(8.0)}
    assert set(waits) == {name for name, run in configs.items() if run.model == "yolov5n" and run.pretrained}
    statuses = [config_status(tmp_path, name, run.epochs) for name, run in configs.items()]
    costs = {n: r.expected_cost() for n, r in configs.items()}
    planned = planned_seconds(configs, config, tmp_path, tmp_path / "logs")
    progress = estimate_progress(statuses, costs, tmp_path, tmp_path / "logs", None, planned)
    without = campaign_seconds_left(progress, slots=16)
    waiting = {name: "pretrain yolov5n" for name, run in configs.items() if run.model == "yolov5n"}
    assert campaign_seconds_left(progress, slots=16, pretraining=(left, waiting)) == pytest.approx(
        max(without, 8.0 + max(p.remaining_seconds for p in progress if p.status.name in waiting))
    )
    # Under way: the epochs left at its own seconds per epoch (one epoch of 30 s done, one left).
    run = tmp_path / "pretrain" / "yolov5n_run"
    run.mkdir(parents=True)
    (run / "results.csv").write_text("epoch,time,metrics/mAP50-95(B)\n1,30.0,0.1\n")
    assert pretraining_left(configs, config, tmp_path, tmp_path / "logs")[0] == {"pretrain yolov5n": 30.0}
    (tmp_path / "logs" / "pretrain").mkdir(parents=True)
    (tmp_path / "logs" / "pretrain" / "yolov5n.benchmark.tsv").write_text("s\th:m:s\n9.5\t0:00:09\n")
    assert pretraining_left(configs, config, tmp_path, tmp_path / "logs") == ({}, {})


def test_before_any_epoch_the_probes_price_each_job_s_start_up_and_each_epoch_s_end(tmp_path):
    course, configs = course_folder(tmp_path)
    probes = tmp_path / "plan" / "probes.csv"
    rows = list(csv.DictReader(probes.open()))
    timed = {"startup_seconds": "5.0", "epoch_validation_seconds": "2.0", "checkpoint_seconds": "1.0"}
    campaign = resolved(course, tmp_path)
    jobs = campaign.benchmark_stems()
    untimed = planned_seconds(configs, campaign.config, tmp_path, tmp_path / "logs", jobs)
    with probes.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=[*rows[0], *timed])
        writer.writeheader()
        writer.writerows({**row, **timed} for row in rows)
    planned = planned_seconds(configs, campaign.config, tmp_path, tmp_path / "logs", jobs)
    name = next(iter(configs))
    epochs = configs[name].epochs
    # The steps as before; each epoch's end (validation 2 s, checkpoint 1 s) instead of 20 images at 1 ms,
    # and besides the epochs the start-up and a final validation.
    assert planned[name].fixed == 7.0
    assert planned[name].training == pytest.approx(untimed[name].training + 7.0 + epochs * 3.0 - 0.02 * (epochs + 1))
    # Every job after it starts a fresh process: 5 s each on top of its images.
    count = sum(len(stems) for stems in jobs[name].values())
    assert planned[name].after == pytest.approx(untimed[name].after + 5.0 * count)
    statuses = [config_status(tmp_path, n, r.epochs) for n, r in configs.items()]
    costs = {n: r.expected_cost() for n, r in configs.items()}
    progress = estimate_progress(statuses, costs, tmp_path, tmp_path / "logs", jobs, planned)
    # Before any training finished, what a training costs besides its epochs is its probe's.
    assert progress[0].status.name == name and progress[0].training_seconds == pytest.approx(planned[name].training)


def test_without_gpus_a_training_has_every_core_and_its_jobs_after_wait_for_the_last_training():
    from campaign.reporting.status import ConfigStatus
    from campaign.reporting.status_page import Progress

    def to_do(name: str, training: float) -> Progress:
        status = ConfigStatus(name, "to do", 0, 1)
        return Progress(status, [], training + 40, training, after_jobs=[10.0] * 4)

    progress = [to_do("a", 100.0), to_do("b", 60.0)]
    # 2 cores and no GPU (1 training, 2 jobs after it at a time): a, then b, then the 8 jobs 2 by 2.
    assert campaign_seconds_left(progress, slots=1, after_slots=2) == 160 + 40
    # 2 GPUs: both trainings at once; b's jobs while a trains, then a's on both GPUs.
    assert campaign_seconds_left(progress, slots=2, after_slots=2) == 100 + 20
    # Pretrainings take a core each on the CPU: both at once, and each training waits for its own.
    pretraining = ({"pretrain n": 30.0, "pretrain s": 50.0}, {"a": "pretrain n", "b": "pretrain s"})
    assert campaign_seconds_left(progress, slots=1, after_slots=2, pretraining=pretraining) == 50 + 160 + 40


def test_the_jobs_made_once_for_the_campaign_follow_every_other_and_are_priced_as_they_ran(tmp_path):
    from campaign.core.layout import campaign_job_benchmarks
    from campaign.planning.workload import campaign_jobs_seconds
    from campaign.reporting.status import ConfigStatus
    from campaign.reporting.status_page import Progress

    logs = tmp_path / "logs"
    paths = campaign_job_benchmarks(logs)
    assert len(paths) == 9  # the dataset's figures, the tables, findings, timeline and 5 comparison figures
    assert campaign_jobs_seconds(tmp_path, logs) == [0.0] * 9  # nothing ran, no probe: nothing to price with
    for path, seconds in zip(paths[:2], (3.0, 5.0)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\n{seconds}\t0:00:0{seconds:.0f}\n")
    closing = campaign_jobs_seconds(tmp_path, logs)
    assert closing == [3.0, 5.0] + [4.0] * 7  # those that ran as they took; the others at their median
    training = Progress(ConfigStatus("a", "to do", 0, 1), [], 100.0, 100.0, after_jobs=[10.0, 10.0])
    # 2 GPUs: the training, its two jobs side by side, then the 9 (36 s) on 2 GPUs, longest first: 19 s.
    assert campaign_seconds_left([training], slots=2, after_slots=2, closing=closing) == 100 + 10 + 19
    done = Progress(ConfigStatus("a", "done", 1, 1), [], 0.0)
    assert campaign_seconds_left([done], slots=2, closing=closing) == 0  # nothing else left: done
