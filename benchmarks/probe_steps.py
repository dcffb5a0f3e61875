"""Does a probe's time per image hold for a whole training's epochs? The probe against real epochs' steps.

The plan prices a training's epochs as its probe's seconds per training image
(the median of a few steps of a 1000-epoch training, mosaic on) times the
images. A real training's epochs differ: Ultralytics turns mosaic off for the
last `close_mosaic` epochs (all of them in the demo's 10-epoch yolov8s), the
dataloader restarts at every epoch, and every step of the epoch counts, not
the median one. In a scratch folder, on the demo's cleaned and resized data:
the workflow's own probe (`planning.probe.probe`, in fresh processes as the
`probe` rule runs it), then two real trainings of the same model, batch,
size and dataloader workers, one with mosaic off from the first epoch and one
with it on throughout, each epoch's steps timed from its start to its last
batch (its validation and checkpoint are the probe's other columns). Prints,
per training, the probe's and each epoch's seconds per image and the error
(probe - epochs) / epochs; goal: within 10 % (the plan's whole-job goal is 15 %).

Run: `.venv/bin/python benchmarks/probe_steps.py` (about 5 minutes on 2
cores: yolov8s at 128 px, batch 16, 3 epochs each). Writes
results/benchmarks/probe_steps.csv. `--quick`: yolov8n at 64 px, one epoch
(a check of the code path, not a figure).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import yaml
from common import ROOT, SNAKEMAKE, demo_config, report, run_timed, scratch_folder

from campaign.core.yolo_env import prepare_ultralytics
from campaign.planning.probe import probe


def probed_seconds_per_image(model, dataset, imgsz, batch, iterations, workers, out) -> float:
    """The workflow's probe of this training on the CPU: its seconds per training image at `batch`."""
    rows = probe(model, dataset, imgsz, batch, 0, "cpu", "CPU", iterations, workers, out)
    (row,) = [row for row in rows if row["fits"] and row["batch"] == batch]
    return float(row["train_seconds_per_image"])


def epoch_steps(model, dataset, imgsz, batch, epochs, close_mosaic, workers, out) -> list[float]:
    """A real training's seconds of steps in each epoch, from the epoch's start to its last batch."""
    # Imported here, after prepare_ultralytics: Ultralytics reads its settings folder once, on import.
    from ultralytics import YOLO

    starts: list[float] = []
    batch_ends: list[float] = []
    yolo = YOLO(f"{model}.yaml")
    yolo.add_callback("on_train_epoch_start", lambda trainer: starts.append(time.perf_counter()))
    yolo.add_callback("on_train_batch_end", lambda trainer: batch_ends.append(time.perf_counter()))
    yolo.train(
        data=str(dataset),
        imgsz=imgsz,
        batch=batch,
        epochs=epochs,
        close_mosaic=close_mosaic,
        workers=workers,
        device="cpu",
        plots=False,
        project=str(out.parent),
        name=out.name,
        exist_ok=True,
        verbose=False,
    )
    bounds = [*starts[1:], float("inf")]
    return [max(t for t in batch_ends if start < t < end) - start for start, end in zip(starts, bounds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="yolov8s")
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="yolov8n at 64 px, one epoch (a check)")
    args = parser.parse_args()
    if args.quick:
        args.model, args.imgsz, args.epochs = "yolov8n", 64, 1

    config = demo_config(quick=args.quick)
    config["campaign"]["defaults"].update(imgsz=args.imgsz)
    iterations = config.get("plan", {}).get("iterations", 5)
    rows = []
    with scratch_folder() as scratch:
        work = Path(scratch)
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        snakemake = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(work), "--cores", str(args.cores)]
        dataset = work / "results" / "dataset" / "resized" / str(args.imgsz) / "dataset.yaml"
        run_timed([*snakemake, str(dataset.relative_to(work))], cwd=work)  # untimed: the data
        images = len((dataset.parent / "train.txt").read_text().split())
        prepare_ultralytics(work / "yolo-settings")  # offline, as the workflow's jobs are
        probed = probed_seconds_per_image(
            args.model, dataset, args.imgsz, args.batch, iterations, args.cores, work / "probe"
        )
        for mosaic, close_mosaic in (("off", args.epochs), ("on", 0)):
            steps = epoch_steps(
                args.model, dataset, args.imgsz, args.batch, args.epochs, close_mosaic, args.cores, work / mosaic
            )
            per_image = [seconds / images for seconds in steps]
            measured = statistics.mean(per_image)
            rows.append(
                {
                    "model": args.model,
                    "imgsz": args.imgsz,
                    "batch": args.batch,
                    "mosaic": mosaic,
                    "probe_s_per_image": round(probed, 4),
                    "epochs_s_per_image": " ".join(f"{seconds:.4f}" for seconds in per_image),
                    "error_pct": round(100 * (probed - measured) / measured, 1),
                }
            )
    notes = [
        f"{images} training images; the probe: {iterations} timed steps after 2 untimed, their median, "
        f"{args.cores} dataloader workers as the probe rule gives on {args.cores} cores",
        "error = (probe - mean of the epochs) / mean of the epochs; goal: within 10 %",
    ]
    report("probe_steps", rows, notes)


if __name__ == "__main__":
    main()
