"""Accuracy with the resized copy against the full-size images: the same within noise?

The demo campaign's yolov8n (pretrained by the workflow, fine-tuned 15
epochs) trains at 96 px on the demo's 128 px images, with two seeds, once
with `dataset.resize: false` (Ultralytics shrinks each image as it loads it)
and once with `dataset.resize: true` (the copy shrunk to 96 px). Both runs
share the workdir, hence the pretrained checkpoint; only the trainings and
what follows them rerun. The noise is what the workflow itself reports:
the spread between the two seeds and the bootstrap interval of each test
mAP50-95.

Run: `.venv/bin/python benchmarks/resized_accuracy.py` (about 10 minutes on
2 cores). Prints a table and writes results/benchmarks/resized_accuracy.csv.
`--quick`: from random weights (no pretraining), 64 px, one epoch (about a
minute and a half; a check of the code path, its accuracies mean nothing).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import yaml
from common import ROOT, SNAKEMAKE, demo_config, report, run_timed, scratch_folder


def campaign(imgsz: int, epochs: int, resize: bool, quick: bool) -> dict:
    config = demo_config(quick)
    config["dataset"]["resize"] = resize
    if not quick:
        config["pretrain"]["models"] = ["yolov8n"]
    config["campaign"]["defaults"].update(imgsz=imgsz, epochs=epochs, replicates=2)
    config["campaign"]["matrix"] = {}
    config["campaign"]["overrides"] = []
    config["evaluation"]["splits"] = ["test"]
    config["speed"].update(batch=[1], images=4, cpu_repeats=5, formats=["pytorch"])
    config["detect"] = {"configs": [], "sources": []}
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imgsz", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="64 px, one epoch, from random weights (a check)")
    args = parser.parse_args()
    if args.quick:
        args.imgsz, args.epochs = 64, 1
    names = [f"yolov8n_b16_img{args.imgsz}_freeze0", f"yolov8n_b16_img{args.imgsz}_freeze0_seed1"]
    rows = []
    with scratch_folder() as scratch:
        workdir = Path(scratch)
        for resize in (False, True):
            config_file = workdir / f"resize-{resize}.yaml"
            config_file.write_text(yaml.safe_dump(campaign(args.imgsz, args.epochs, resize, args.quick)))
            targets = [f"results/eval/{name}/test/intervals.json" for name in names]
            targets += [f"results/train/{name}/train.json" for name in names]
            command = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", str(args.cores)]
            # Targets first: --configfile takes every path that follows it.
            run_timed([*command, *targets, "--configfile", str(config_file)], cwd=workdir)
            for seed, name in enumerate(names):
                metrics = json.loads((workdir / f"results/eval/{name}/test/metrics.json").read_text())
                intervals = json.loads((workdir / f"results/eval/{name}/test/intervals.json").read_text())
                provenance = json.loads((workdir / f"results/train/{name}/provenance.json").read_text())
                trained = json.loads((workdir / f"results/train/{name}/train.json").read_text())
                low, high = intervals["mAP50-95"]["low"], intervals["mAP50-95"]["high"]
                rows.append(
                    {
                        "images": f"copy at {args.imgsz} px" if resize else "full size (128 px)",
                        "seed": seed,
                        "data_file": provenance["data_file"],
                        "test_mAP50": round(metrics["mAP50"], 3),
                        "test_mAP50-95": round(metrics["mAP50-95"], 3),
                        "interval_95": f"[{low:.3f}, {high:.3f}]",
                        "train_s": round(trained["train_seconds"], 1),
                    }
                )
                print(rows[-1], flush=True)
    means = {
        side: statistics.mean(row["test_mAP50-95"] for row in rows if row["images"] == side)
        for side in dict.fromkeys(row["images"] for row in rows)
    }
    (full, full_mean), (copy, copy_mean) = means.items()
    spreads = [
        max(r["test_mAP50-95"] for r in rows if r["images"] == side)
        - min(r["test_mAP50-95"] for r in rows if r["images"] == side)
        for side in means
    ]
    report(
        "resized_accuracy",
        rows,
        [
            f"mean test mAP50-95: {full_mean:.3f} on the {full}, {copy_mean:.3f} on the {copy} "
            f"(difference {copy_mean - full_mean:+.3f}); seed-to-seed spread {spreads[0]:.3f} and {spreads[1]:.3f}",
        ],
    )


if __name__ == "__main__":
    main()
