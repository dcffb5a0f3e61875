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
`--allow-cpu --quick` rehearses the whole script on a CPU with a tiny campaign.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path

import yaml
from common import ROOT, SNAKEMAKE, run_timed, scratch_folder

sys.path.insert(0, str(ROOT / "scripts"))

QUICK = {
    "pretrain": {"models": ["yolov8n"], "images": 24, "epochs": 1, "imgsz": 64, "batch": 8},
    "campaign": {
        "defaults": {"model": "yolov8n", "batch": 16, "imgsz": 64, "freeze": 0, "epochs": 1, "workers": 0},
        "matrix": {"freeze": [0, 10]},
        "overrides": [],
    },
    "speed": {"batch": [1, 4], "cpu_repeats": 1, "warmup": 1, "images": 8},
    "study": {"imgsz": [32, 64]},
    "detect": {"configs": ["yolov8n_b16_img64_freeze0"]},
}


def campaign_config(quick: bool, allow_cpu: bool) -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for key, value in (QUICK if quick else {}).items():
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
                "utilization_max": max(values, default=None),
                "memory_mb_max": max(memory, default=None),
                "devices": sorted({s["device"] for s in samples}),
            }
        )
    return rows


def ultralytics_speed(workdir: Path, config: str, imgsz: int, device: str) -> dict:
    """Speed per image that Ultralytics' own `val` reports for the same weights (batch 1, fp32)."""
    from ultralytics import YOLO

    model = YOLO(str(workdir / "results" / "train" / config / "best.pt"))
    metrics = model.val(
        data=str(workdir / "results" / "dataset" / "dataset.yaml"),
        split="val",
        batch=1,
        imgsz=imgsz,
        device=device,
        half=False,
        plots=False,
        verbose=False,
    )
    return {key: round(value, 3) for key, value in metrics.speed.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="where the results are kept (default benchmarks/gpu/<date>_<gpu>)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--allow-cpu", action="store_true", help="rehearse without a GPU")
    parser.add_argument("--quick", action="store_true", help="a tiny campaign instead of the demo")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        sys.exit("gpu_check: torch sees no CUDA GPU here (give --allow-cpu to rehearse on the CPU)")
    facts = device_facts()
    label = facts["gpu"].split(" (")[0].replace(" ", "-") if torch.cuda.is_available() else "cpu"
    out = args.out or ROOT / "benchmarks" / "gpu" / f"{time.strftime('%Y-%m-%d')}_{label}"
    out.mkdir(parents=True, exist_ok=True)

    config = campaign_config(args.quick, args.allow_cpu)
    with scratch_folder() as scratch:
        workdir = Path(scratch)
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        command = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", str(args.cores)]
        command += ["--resources", "gpu=1"]
        seconds, _ = run_timed(command, cwd=workdir)

        from campaign.yolo_env import prepare_ultralytics

        prepare_ultralytics(workdir / ".ultralytics-check", tensorboard=False)
        metrics = read_csv(workdir / "results" / "summary" / "metrics.csv")
        speed_rows = [row for path in sorted(workdir.glob("results/speed/*.csv")) for row in read_csv(path)]
        device = "0" if torch.cuda.is_available() else "cpu"
        comparison = []
        for row in metrics:
            ours = next(
                r for r in speed_rows if r["config"] == row["config"] and r["batch"] == "1" and r["half"] == "False"
            )
            theirs = ultralytics_speed(workdir, row["config"], int(ours["imgsz"]), device)
            comparison.append(
                {
                    "config": row["config"],
                    "workflow_inference_ms": round(float(ours["inference_ms"]), 3),
                    "ultralytics_val_inference_ms": theirs["inference"],
                    "workflow_latency_ms": round(float(ours["latency_ms"]), 3),
                    "ultralytics_val_total_ms": round(sum(theirs.values()), 3),
                    "test_mAP50-95": row.get("test_mAP50-95"),
                }
            )
        result = {
            "device": facts,
            "campaign": "quick" if args.quick else "demo (config.yaml)",
            "wall_seconds": round(seconds, 1),
            "training_utilization": utilisation(workdir),
            "speed_batch1_fp32": comparison,
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
        "## Device utilisation while training (NVML on a GPU; CPU load in a CPU rehearsal)",
        "",
        "| configuration | samples | mean % | max % | max memory MB |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in result["training_utilization"]:
        lines.append(
            f"| {row['config']} | {row['samples']} | {row['utilization_mean']} | {row['utilization_max']} "
            f"| {row['memory_mb_max']} |"
        )
    lines += [
        "",
        "## Speed at batch 1, fp32: the workflow's study and Ultralytics' own val (ms per image)",
        "",
        "| configuration | inference (workflow) | inference (yolo val) | total (workflow) | total (yolo val) "
        "| test mAP50-95 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["speed_batch1_fp32"]:
        lines.append(
            f"| {row['config']} | {row['workflow_inference_ms']} | {row['ultralytics_val_inference_ms']} "
            f"| {row['workflow_latency_ms']} | {row['ultralytics_val_total_ms']} | {row['test_mAP50-95']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
