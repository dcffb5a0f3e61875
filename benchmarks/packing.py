"""Packing: N small trainings one after another on one GPU, against packed on that GPU (gpu.pack).

The same N trainings of the demo dataset (YOLOv5n and YOLOv8n, seeds 0, 1,
...; a few epochs) run through the whole workflow twice, each in a fresh
folder from the same cleaned and split dataset:

- one after another: `gpu.pack` off and `--resources gpu=1`, so each
  training holds the GPU alone;
- packed: `gpu.pack` on with `max_share` N and each training's need given
  (`gpu.needs_mb`: its peak memory in the first run plus `headroom_mb`), and
  `--resources gpu=N`, so the lease admits them side by side, each capped at
  its need.

It reports the makespan of each (the wall time of the `snakemake` command
that trains them), the ratio, each training's peak memory (train.json) and
the mean utilisation of the GPU while the trainings ran (their monitor.csv).
Goal on a GPU: 4 small trainings packed at least 1.5x faster than one after
another.

On a machine without a GPU no GPU figure is measured: the same code runs on
a device declared in the config (3000 MB a training), the trainings then
share the CPU's cores, and the table says "CPU rehearsal".

Run: `.venv/bin/python benchmarks/packing.py` (GPU: 320 px, 3 epochs; CPU
rehearsal: 64 px, 2 epochs, about 5 minutes on 2 cores). Prints a table and
writes results/benchmarks/packing.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
from pathlib import Path

import yaml
from common import ROOT, SNAKEMAKE, demo_config, report, run_timed, scratch_folder

# On the CPU a training's memory is its process's: the share each packed training is held to there.
CPU_NEED_MB = 3000


def on_gpu() -> bool:
    from campaign.gpus.leases import nvml_devices

    return bool(nvml_devices())


def campaign(count: int, imgsz: int, epochs: int, gpu: bool) -> dict:
    """The demo's dataset with `count` (even) small trainings: yolov5n and yolov8n, seeds 0, 1, ..."""
    config = demo_config()
    models = ["yolov5n", "yolov8n"]
    config["campaign"] = {
        "defaults": {
            "model": "yolov8n",
            "batch": 16,
            "imgsz": imgsz,
            "freeze": 0,
            "epochs": epochs,
            "pretrained": False,
            "workers": 1,
        },
        "matrix": {"model": models, "seed": list(range(max(1, count // 2)))},
    }
    config["pretrain"] = {"models": []}
    config["weights"] = {}
    config["detect"] = {"configs": [], "sources": []}
    config["gpu"] = {"lock_dir": "/tmp/detection-campaign-benchmark-leases", "monitor_seconds": 0.5}
    if not gpu:
        config["gpu"]["devices"] = [{"index": 0, "memory_mb": 4 * CPU_NEED_MB}]
    return config


def train_all(workdir: Path, config: dict, names: list[str], gpus: int, cores: int) -> float:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    targets = [f"results/train/{name}/train.json" for name in names]
    command = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", str(cores)]
    seconds, _ = run_timed([*command, *targets, "--resources", f"gpu={gpus}"], cwd=workdir)
    return seconds


def measured(workdir: Path, names: list[str]) -> tuple[list[float | None], float | None]:
    """Each training's peak memory (MB, None on the CPU) and the device's mean utilisation while they ran."""
    peaks, utilisation = [], []
    for name in names:
        summary = json.loads((workdir / "results" / "train" / name / "train.json").read_text())
        peaks.append(summary.get("peak_memory_mb"))
        with open(workdir / "results" / "train" / name / "monitor.csv", newline="") as stream:
            utilisation += [float(row["utilization"]) for row in csv.DictReader(stream) if row["device"] != "cpu"]
    return peaks, statistics.mean(utilisation) if utilisation else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trainings", type=int, default=4)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="two trainings of one epoch (a check, not a figure)")
    args = parser.parse_args()
    if args.quick:
        args.trainings = 2

    from campaign.core.configurations import expand_campaign

    gpu = on_gpu()
    imgsz, epochs = (320, 3) if gpu else (64, 2)
    epochs = 1 if args.quick else epochs
    config = campaign(args.trainings, imgsz, epochs, gpu)
    names = list(expand_campaign(config["campaign"]))
    rows = []
    with scratch_folder() as scratch:
        base = Path(scratch) / "prepared"
        base.mkdir()
        (base / "config.yaml").write_text(yaml.safe_dump(config))
        run_timed([*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(base), "--cores", str(args.cores), "prepare"])
        folders = {}
        for mode in ("one after another", "packed"):
            folders[mode] = Path(scratch) / mode.replace(" ", "_")
            shutil.copytree(base / "results", folders[mode] / "results")
        alone = train_all(folders["one after another"], config, names, 1, args.cores)
        peaks, alone_use = measured(folders["one after another"], names)
        headroom = 1000
        needs = {name: int(peak + headroom) if peak else CPU_NEED_MB for name, peak in zip(names, peaks)}
        packed_config = json.loads(json.dumps(config))
        packed_config["gpu"].update(pack=True, max_share=args.trainings, needs_mb=needs)
        packed = train_all(folders["packed"], packed_config, names, args.trainings, args.cores)
        packed_peaks, packed_use = measured(folders["packed"], names)
        for mode, seconds, use, peak_list in (
            ("one after another", alone, alone_use, peaks),
            ("packed", packed, packed_use, packed_peaks),
        ):
            rows.append(
                {
                    "device": "GPU" if gpu else "CPU rehearsal",
                    "trainings": args.trainings,
                    "mode": mode,
                    "makespan_s": round(seconds, 1),
                    "speed_up": round(alone / seconds, 2),
                    "mean_gpu_utilisation_pct": round(use, 1) if use is not None else "",
                    "peak_memory_mb": " ".join(f"{p:.0f}" for p in peak_list if p is not None),
                    "goal": "packed >= 1.5x faster on a GPU" if mode == "packed" else "",
                }
            )
    needs_said = f"peak + {headroom} MB" if gpu else f"{CPU_NEED_MB} MB of the declared device's memory"
    notes = [f"{imgsz} px, {epochs} epochs, batch 16, each training's need: {needs_said}"]
    if not gpu:
        notes.append("no GPU here: no GPU figure was measured; the trainings shared the CPU's cores (rehearsal)")
    report("packing", rows, notes)


if __name__ == "__main__":
    main()
