"""GPU check: the demo campaign on an NVIDIA GPU, with leases and monitoring, against Ultralytics' own numbers.

Runs the whole demo (config.yaml, with `gpu.require: true`) in a scratch
folder with `snakemake --cores N --resources gpu=1`, then records into
--out (default benchmarks/gpu/<date>_<gpu>):

- gpu_check.md / gpu_check.json: device, driver, library versions, the run's
  wall time, the GPU utilisation and memory sampled during every training
  (NVML, from each training's monitor.csv), the workflow's speed study at
  batch 1 next to the speed Ultralytics' own `val` reports on the same
  weights, and every configuration's test mAP50-95;
- metrics.csv (the campaign's comparison table) and speed.csv (every speed row).

On a machine without internet, first make the packages importable that it
lacks (benchmarks/gpu_check.sh does this from wheels). Fits in about 10
minutes on one H100.

Run: `python benchmarks/gpu_check.py` (on the GPU machine).
`--allow-cpu --preset quick` rehearses the whole script on a CPU with a tiny campaign;
`--preset short` is the demo with fewer epochs (a few minutes on one GPU).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

import yaml
from common import ROOT, SNAKEMAKE, git_commit, run_timed, scratch_folder

QUICK = {
    "pretrain": {"models": ["yolov8n"], "images": 24, "epochs": 1, "imgsz": 64, "batch": 8},
    "campaign": {
        "defaults": {"model": "yolov8n", "batch": 16, "imgsz": 64, "freeze": 0, "epochs": 1, "workers": 0},
        "matrix": {"freeze": [0, 10]},
        "overrides": [],
    },
    "speed": {"batch": [1, 4], "cpu_repeats": 5, "warmup": 1, "images": 8},
    "study": {"imgsz": [32, 64]},
    "detect": {"configs": ["yolov8n_b16_img64_freeze0"]},
}
# The demo's four configurations with fewer epochs, so that the check fits
# in a few minutes of a lent GPU; timings at the batch sizes of the course.
SHORT = {
    "pretrain": {"epochs": 6},
    "campaign": {
        "defaults": {"model": "yolov8n", "batch": 16, "imgsz": 128, "freeze": 0, "epochs": 8, "workers": 4},
        "matrix": {"model": ["yolov8n", "yolov8s"], "freeze": [0, 10]},
        "overrides": [],
    },
    "speed": {"batch": [1, 32], "half": True, "warmup": 5, "repeats": 20, "images": 32},
    "study": {"imgsz": [128, 256, 320]},
    "detect": {"configs": ["yolov8n_b16_img128_freeze0"]},
}
PRESETS = {"quick": QUICK, "short": SHORT, "demo": {}}


def campaign_config(preset: str, allow_cpu: bool) -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for key, value in PRESETS[preset].items():
        config[key] = {**config[key], **value}
    config["dataset"]["raw"] = str(ROOT / config["dataset"]["raw"])
    config["detect"]["sources"] = [str(ROOT / source) for source in config["detect"]["sources"]]
    config["gpu"]["require"] = not allow_cpu
    return config


def device_facts() -> dict:
    import torch
    import ultralytics

    facts = {"torch": torch.__version__, "ultralytics": ultralytics.__version__, "cuda": torch.version.cuda}
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
        facts["gpu_memory_mb"] = torch.cuda.get_device_properties(0).total_memory // 2**20
        try:
            import pynvml

            pynvml.nvmlInit()
            facts["driver"] = pynvml.nvmlSystemGetDriverVersion()
            pynvml.nvmlShutdown()
        except Exception as error:  # NVML is informative here, not required
            facts["driver"] = f"unknown ({error})"
    else:
        facts["gpu"] = "none (CPU rehearsal)"
    # The compatibility check's real path: NVML's driver and cards against the installed torch build.
    from campaign.gpus.leases import check_this_server

    facts["compatibility"] = check_this_server().table()
    return facts


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def utilisation(workdir: Path) -> list[dict]:
    """Per training: the NVML samples its monitor took while it trained."""
    rows = []
    for monitor in sorted(workdir.glob("results/train/*/monitor.csv")):
        samples = [s for s in read_csv(monitor) if s["utilization"]]
        values = [float(s["utilization"]) for s in samples]
        memory = [float(s["memory_mb"]) for s in samples if s["memory_mb"]]
        rows.append(
            {
                "config": monitor.parent.name,
                "samples": len(values),
                "utilization_mean": round(statistics.fmean(values), 1) if values else None,
                "share_above_90": round(sum(v > 90 for v in values) / len(values), 3) if values else None,
                "utilization_max": max(values, default=None),
                "memory_mb_max": max(memory, default=None),
                "devices": sorted({s["device"] for s in samples}),
            }
        )
    return rows


def ultralytics_speed(workdir: Path, config: str, imgsz: int, device: str, batch: int, half: bool) -> dict:
    """Speed per image that Ultralytics' own `val` reports for the same weights, on the test split.

    The workflow's speed study times `predict` on test images (conf 0.25);
    `val` runs on every test image with conf 0.001, so its postprocess (NMS
    over many more boxes) is not comparable: compare the inference column.
    """
    from ultralytics import YOLO

    model = YOLO(str(workdir / "results" / "train" / config / "best.pt"))
    metrics = model.val(
        data=str(workdir / "results" / "dataset" / "dataset.yaml"),
        split="test",
        batch=batch,
        imgsz=imgsz,
        device=device,
        half=half,
        plots=False,
        verbose=False,
    )
    return {key: round(value, 3) for key, value in metrics.speed.items()}


def amp_check(device: str) -> dict:
    """Ultralytics' AMP check as a training runs it here (offline: it cannot fetch its reference model)."""
    if device == "cpu":
        return {"ran": False, "reason": "CPU: AMP is not used"}
    import io
    import logging

    from ultralytics import YOLO
    from ultralytics.utils import LOGGER
    from ultralytics.utils.checks import check_amp

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    LOGGER.addHandler(handler)
    model = YOLO("yolov8n.yaml").model.to(f"cuda:{device}")
    started = time.perf_counter()
    try:
        enabled = check_amp(model)
    except Exception as error:  # recorded, not fatal: the rest of the check is worth keeping
        enabled = f"check failed: {type(error).__name__}: {error}"
    finally:
        LOGGER.removeHandler(handler)
    return {"amp_enabled": enabled, "seconds": round(time.perf_counter() - started, 2), "said": stream.getvalue()}


def training_amp_lines(workdir: Path) -> list[str]:
    """What each training's log says about the AMP check."""
    return sorted({line.strip() for log in workdir.glob("logs/train/*.log") for line in open(log) if "AMP:" in line})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="where the results are kept (default benchmarks/gpu/<date>_<gpu>)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--allow-cpu", action="store_true", help="rehearse without a GPU")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo", help="quick: tiny; short: fewer epochs")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        sys.exit("gpu_check: torch sees no CUDA GPU here (give --allow-cpu to rehearse on the CPU)")
    facts = device_facts()
    label = facts["gpu"].split(" (")[0].replace(" ", "-") if torch.cuda.is_available() else "cpu"
    out = args.out or ROOT / "benchmarks" / "gpu" / f"{time.strftime('%Y-%m-%d')}_{label}"
    out.mkdir(parents=True, exist_ok=True)

    config = campaign_config(args.preset, args.allow_cpu)
    with scratch_folder() as scratch:
        workdir = Path(scratch)
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        command = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", str(args.cores)]
        command += ["--resources", "gpu=1"]
        if importlib.util.find_spec("pulp") is None:  # a wheelhouse may leave out Snakemake's optional ILP solver
            command += ["--scheduler", "greedy"]
        seconds, _ = run_timed(command, cwd=workdir)

        from campaign.core.yolo_env import prepare_ultralytics

        prepare_ultralytics(workdir / ".ultralytics-check", tensorboard=False)
        metrics = read_csv(workdir / "results" / "summary" / "metrics.csv")
        speed_rows = [row for path in sorted(workdir.glob("results/speed/*.csv")) for row in read_csv(path)]
        device = "0" if torch.cuda.is_available() else "cpu"
        comparison = []
        for row in metrics:
            for ours in (r for r in speed_rows if r["config"] == row["config"]):
                half = ours["half"] == "True"
                theirs = ultralytics_speed(workdir, row["config"], int(ours["imgsz"]), device, int(ours["batch"]), half)
                comparison.append(
                    {
                        "config": row["config"],
                        "batch": int(ours["batch"]),
                        "half": half,
                        "workflow_inference_ms": round(float(ours["inference_ms"]), 3),
                        "ultralytics_val_inference_ms": theirs["inference"],
                        "workflow_latency_ms": round(float(ours["latency_ms"]), 3),
                        "ultralytics_val_total_ms": round(sum(theirs.values()), 3),
                        "test_mAP50-95": row.get("test_mAP50-95"),
                    }
                )
        result = {
            "commit": git_commit(),
            "device": facts,
            "campaign": args.preset,
            "wall_seconds": round(seconds, 1),
            "training_utilization": utilisation(workdir),
            "speed_test_split": comparison,
            "amp_check": amp_check(device),
            "amp_in_training_logs": training_amp_lines(workdir),
        }
        (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
        for name, rows in (("metrics.csv", metrics), ("speed.csv", speed_rows)):
            with open(out / name, "w", newline="") as stream:
                writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
    markdown = render(result)
    (out / "gpu_check.md").write_text(markdown)
    print(markdown)
    print(f"kept in {out}")


def render(result: dict) -> str:
    facts = result["device"]
    lines = [
        f"# GPU check: {facts['gpu']}",
        "",
        f"driver {facts.get('driver', '-')}, CUDA {facts['cuda']}, torch {facts['torch']}, "
        f"ultralytics {facts['ultralytics']}; campaign: {result['campaign']}; "
        f"whole run {result['wall_seconds']} s",
        "",
        "## This server's GPUs against the installed torch (`campaign plan`'s check)",
        "",
        "```",
        facts.get("compatibility", "(not read)"),
        "```",
        "",
        "## Device utilisation while training (NVML on a GPU; CPU load in a CPU rehearsal)",
        "",
        "| configuration | samples | mean % | share of samples > 90 % | max % | max memory MB |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["training_utilization"]:
        lines.append(
            f"| {row['config']} | {row['samples']} | {row['utilization_mean']} | {row['share_above_90']} "
            f"| {row['utilization_max']} | {row['memory_mb_max']} |"
        )
    lines += [
        "",
        "## Speed on the test split: the workflow's study (predict) and Ultralytics' own val (ms per image)",
        "",
        "Inference is the same forward pass on both sides; totals differ by protocol (val's NMS at conf 0.001).",
        "",
        "| configuration | batch | fp16 | inference (workflow) | inference (yolo val) | total (workflow) "
        "| total (yolo val) | test mAP50-95 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["speed_test_split"]:
        lines.append(
            f"| {row['config']} | {row['batch']} | {row['half']} | {row['workflow_inference_ms']} "
            f"| {row['ultralytics_val_inference_ms']} | {row['workflow_latency_ms']} "
            f"| {row['ultralytics_val_total_ms']} | {row['test_mAP50-95']} |"
        )
    amp = result["amp_check"]
    lines += ["", "## AMP check", "", f"`check_amp` here: {json.dumps(amp)}", ""]
    lines += [f"- training log: {line}" for line in result["amp_in_training_logs"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
