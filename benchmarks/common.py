"""What every benchmark shares: timing a command, counting Snakemake's jobs, the table and the CSV."""

from __future__ import annotations

import csv
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Where the tables go; the tests' quick runs point it elsewhere, so that they never replace measured figures.
RESULTS = Path(os.environ.get("DETECTION_CAMPAIGN_BENCHMARK_RESULTS") or ROOT / "results" / "benchmarks")
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def machine() -> str:
    """The machine the figures were measured on, as the table's footer says it."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def demo_config(quick: bool = False) -> dict[str, Any]:
    """The demo's config.yaml, its upload and video paths made absolute (it runs in a scratch folder).

    `quick`: shrunk to what a benchmark's quick mode needs to run its code
    path end to end in about a minute on 2 cores: one yolov8n from random
    weights (no pretraining), 64 px, one epoch without Ultralytics' plots,
    evaluated on test only, timed at batch 1, no videos.
    """
    import yaml

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["dataset"]["raw"] = str(ROOT / config["dataset"]["raw"])
    config["detect"]["sources"] = [str(ROOT / source) for source in config["detect"]["sources"]]
    if quick:
        config["pretrain"]["models"] = []
        defaults = {"model": "yolov8n", "pretrained": False, "batch": 16, "imgsz": 64, "freeze": 0, "epochs": 1}
        config["campaign"] = {"defaults": {**defaults, "workers": 0, "args": {"plots": False}}}
        config["evaluation"]["splits"] = ["test"]
        config["speed"].update(batch=[1], images=4, warmup=1, cpu_repeats=5, formats=["pytorch"])
        config["study"]["imgsz"] = [64]
        config["detect"] = {"configs": [], "sources": []}
    return config


def scratch_folder(parent: Path | None = None) -> tempfile.TemporaryDirectory:
    """A temporary folder beside the workflow's own results, removed afterwards.

    Not the system's temporary folder: it may sit on another file system
    (tmpfs, or a busy disk; on the benchmark machine, creating small files
    under /tmp cost ten times what it costs in the project's folder), and the
    workflow writes its results in the project.
    """
    parent = parent or RESULTS
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(dir=parent, prefix="scratch-")


def run_timed(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall seconds of a command that must succeed, and its output."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({result.returncode}):\n{output[-4000:]}")
    return seconds, output


def snakemake_jobs(output: str) -> int:
    """The job count of Snakemake's job-stats table; 0 when there was nothing to do."""
    totals = re.findall(r"^total\s+(\d+)\s*$", output, re.MULTILINE)
    if totals:
        return int(totals[-1])
    if "Nothing to be done" in output:
        return 0
    raise ValueError(f"no job count in Snakemake's output:\n{output[-2000:]}")


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def report(name: str, rows: list[dict[str, Any]], notes: list[str] = ()) -> Path:
    """Print rows as a table and write them to results/benchmarks/<name>.csv."""
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(row[c])) for row in rows)) for c in columns}
    print(f"\n## {name}")
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    for note in notes:
        print(note)
    print(f"measured on: {machine()}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.csv"
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def git_commit() -> str:
    """The commit measured: what the caller passed (a copied tree may carry no or another .git), else git's."""
    if os.environ.get("DETECTION_CAMPAIGN_COMMIT"):
        return os.environ["DETECTION_CAMPAIGN_COMMIT"]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return commit.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


TRAINING_TIME_COLUMNS = "measured_s: the training job (its benchmark file); epochs_s: its epochs alone (train.json)"


def training_time_rows(work: Path, configs: dict) -> list[dict[str, Any]]:
    """Per configuration trained in the campaign folder `work`: the plan's estimate from its probe
    (planning/estimate.py, as `campaign plan` prints it) against its training job as measured.

    The estimate reads only the probes and the split lists, so it is the same made before or after the
    trainings; it prices the whole job (start-up, epochs with their validations and checkpoints, the
    final validation), which its benchmark file measures.
    """
    import json

    from campaign.core.layout import job_benchmark
    from campaign.planning.estimate import estimate, read_probes
    from campaign.planning.probe import probe_settings
    from campaign.planning.workload import benchmark_seconds

    probes = read_probes(work / "results" / "plan" / "probes.csv")
    images = {s: len((work / "results" / "dataset" / f"{s}.txt").read_text().split()) for s in ("train", "val")}
    rows = []
    for name, run in configs.items():
        probed = probes[probe_settings(run)[0]]
        predicted = estimate(name, run.parameters(), probed, images["train"], images["val"], 8192).hours * 3600
        measured = benchmark_seconds(job_benchmark("train", name, work / "logs"))
        epochs = json.loads((work / "results" / "train" / name / "train.json").read_text())["train_seconds"]
        rows.append(
            {
                "config": name,
                "predicted_s": round(predicted, 1),
                "measured_s": round(measured, 1),
                "error_pct": round(100 * (predicted - measured) / measured, 1),
                "epochs_s": round(epochs, 1),
            }
        )
    return rows
