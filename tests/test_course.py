"""The course's campaign (configs/course.yaml) plans as a whole campaign of its own, before any training."""

import csv
import math
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

from campaign.planning.plan import dry_run_jobs
from tiny_campaign import TINY

pytestmark = pytest.mark.slow  # the course campaign planned and probed

ROOT = Path(__file__).resolve().parents[1]


def course_folder(tmp_path: Path) -> None:
    """The course's campaign in tmp_path: the demo's uploads and video in its folders, its checkpoints recorded."""
    shutil.copytree(ROOT / "demo" / "raw", tmp_path / "uploads", ignore=shutil.ignore_patterns("delta"))
    (tmp_path / "videos").mkdir()
    shutil.copyfile(ROOT / "demo" / "videos" / "table.mp4", tmp_path / "videos" / "course.mp4")
    (tmp_path / "configs").mkdir()
    shutil.copyfile(ROOT / "configs" / "course.yaml", tmp_path / "configs" / "course.yaml")
    (tmp_path / "weights").mkdir()
    for size in "nsml":  # stand-ins for the COCO checkpoints, recorded as a user would record them
        torch.save({"stand_in": size}, tmp_path / "weights" / f"yolov5{size}u.pt")
    record = [sys.executable, "-m", "campaign", "fetch-weights", "--configfile", "configs/course.yaml"]
    subprocess.run([*record, "--record"], cwd=tmp_path, check=True, capture_output=True)


def test_the_course_campaign_dry_runs_with_its_own_keys_only(tmp_path):
    course_folder(tmp_path)
    jobs = dry_run_jobs(["-d", str(tmp_path), "--configfile", str(tmp_path / "configs" / "course.yaml")])
    counts = Counter(job["rule"] for job in jobs)
    # 4 sizes x 2 batches x 2 freeze values; val + test; a speed table each, one timing per network (the 4
    # sizes: batch and freeze do not change the network); the study on 4; 2 configs x 1 video.
    assert counts["train"] == 16 and counts["evaluate"] == 32 and counts["speed"] == 16 and counts["latency"] == 4
    assert counts["imgsz_study"] == 4 and counts["detect"] == 2
    # Nothing of the demo's config.yaml: no pretraining, not its detection configurations.
    assert "pretrain" not in counts and "pretrain_source_data" not in counts
    trained = sorted(job["wildcards"].removeprefix("cfg=") for job in jobs if job["rule"] == "train")
    assert trained[0] == "yolov5l_b64_img320_freeze0" and trained[-1] == "yolov5s_b96_img320_freeze10"

    # A checkpoint that changed since it was recorded stops the plan before any job.
    with open(tmp_path / "weights" / "yolov5mu.pt", "ab") as stream:
        stream.write(b"\0")
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n"]
    result = subprocess.run([*command, "--configfile", "configs/course.yaml"], cwd=tmp_path, capture_output=True)
    assert result.returncode != 0
    assert b"weights.yolov5m: weights/yolov5mu.pt does not match the SHA-256" in result.stdout + result.stderr


def test_plan_probes_every_distinct_training_step_before_any_training(tmp_path):
    # On the CPU the probes start at plan.cpu_batch (8 here, below the configured 16) and extrapolate.
    config = {**TINY, "detect": {}, "plan": {"iterations": 2, "cpu_batch": 8}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "campaign", "plan", "--configfile", "config.yaml", "--cores", "2"]
    result = subprocess.run(
        [*command, "--probe", "--servers", "2", "--gpus", "1", "--device-memory-mb", "600"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "results/plan/probes.csv")))
    # Two distinct steps (freeze 0 and 10), each at cpu_batch and at half of it, measured on this machine.
    assert sorted((r["probe"], r["configured_batch"], r["batch"]) for r in rows) == [
        ("yolov8n_b16_img64_freeze0", "16", "4"),
        ("yolov8n_b16_img64_freeze0", "16", "8"),
        ("yolov8n_b16_img64_freeze10", "16", "4"),
        ("yolov8n_b16_img64_freeze10", "16", "8"),
    ]
    assert all(float(r["peak_memory_mb"]) > 100 and float(r["train_seconds_per_image"]) > 0 for r in rows)
    # Nothing trained, yet every configuration has memory, hours and a verdict for a 600 MB device.
    assert not (tmp_path / "results/train").exists()
    out = result.stdout
    assert "To train: 2 configuration(s)" in out and "CPU-h" in out and "Makespan on 2 server(s) x 1 GPU(s)" in out
    assert out.count(" NO ") == 2 and "does not fit in 600 MB" in out
    assert len(re.findall(r" ~\d+ ", out)) == 2 and "~ extrapolated from the smaller batches probed" in out


H200_PROBES = ROOT / "benchmarks" / "gpu" / "2026-12-04_NVIDIA-H200_course" / "1-probes-and-trainings" / "probes.csv"


def test_with_packing_a_dry_run_shows_what_each_training_asks_for(tmp_path):
    """The course's probes measured on a GPU: each probed training asks for one share and its need, the rest a GPU."""
    course_folder(tmp_path)
    config = yaml.safe_load((tmp_path / "configs" / "course.yaml").read_text())
    config["gpu"].update(pack=True, max_share=2)
    (tmp_path / "configs" / "course.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "results" / "plan").mkdir(parents=True)
    shutil.copyfile(H200_PROBES, tmp_path / "results" / "plan" / "probes.csv")
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n"]
    result = subprocess.run(
        [*command, "--configfile", "configs/course.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    asks = dict(
        re.findall(r"wildcards: cfg=(\S+)\n\s+priority: \d+\n\s+resources: tmpdir=\S+, (gpu=.*)", result.stdout)
    )
    trainings = [name for name, ask in asks.items() if "gpu_mb" in ask]
    assert len(trainings) == 16, asks
    peaks = {
        row["probe"]: float(row["peak_memory_mb"])
        for row in csv.DictReader(open(H200_PROBES))
        if row["configured_batch"] == row["batch"]
    }
    for name in trainings:
        need = int(re.search(r"gpu_mb=(\d+)", asks[name])[1])
        if name in peaks:  # probed: one share, its peak and the headroom
            assert asks[name].startswith("gpu=1,") and need == math.ceil(peaks[name] + 1000), (name, asks[name])
        else:  # not probed: a whole GPU, both its shares
            assert asks[name] == "gpu=2, gpu_mb=0", (name, asks[name])
    assert 0 < len(peaks) < 16
    # Evaluations take a whole GPU: both shares.
    assert "resources: tmpdir=/tmp, gpu=2" in result.stdout

    # plan.py then puts the trainings that fit together side by side and says which share a GPU.
    lists = [f"results/dataset/{split}.txt" for split in ("train", "val", "test")]
    prepared = subprocess.run(
        [*command[:-1], *lists, "--cores", "2", "--configfile", "configs/course.yaml"],
        cwd=tmp_path,
        capture_output=True,
    )
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    plan = [sys.executable, "-m", "campaign", "plan", "--configfile", "configs/course.yaml"]
    planned = subprocess.run(
        [*plan, "--servers", "2", "--gpus", "4", "--device-memory-mb", "8192"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert planned.returncode == 0, planned.stdout[-3000:] + planned.stderr[-3000:]
    out = planned.stdout
    assert "With gpu.pack (at most 2 per GPU, needs within 8192 MB)" in out, out
    groups = re.findall(r"^  server \d GPU \d: (.*)$", out, flags=re.MULTILINE)
    assert groups, out
    for line in groups:
        for group in line.split("; then "):
            names = group.split(" + ")
            assert len(names) == 2 and sum(math.ceil(peaks[n] + 1000) for n in names) <= 8192, group
    spans = re.findall(r"(?:longest first|gpu\.pack .*\)): ([\d.]+) (h|min)", out)
    hours = [float(value) / (60 if unit == "min" else 1) for value, unit in spans]
    assert len(hours) == 2 and hours[1] <= hours[0], out
