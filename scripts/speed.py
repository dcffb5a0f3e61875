"""Rule speed: latency per stage and throughput of one configuration, batch 1 and N, in each format.

The job leases a whole GPU (no other job on it) and takes every core, so that
nothing else runs on the machine while it measures. Exported models run on
the CPU (ONNX Runtime) and are validated on the split the PyTorch model's
accuracy comes from, so each row has the accuracy of what it timed.
"""

import json
from pathlib import Path

from campaign.core.io import atomic_write_csv
from campaign.core.rule_job import model_job, record_provenance
from campaign.dataset.resizing import split_images
from campaign.evaluation.timing import SPEED_FIELDS, time_model
from campaign.evaluation.validation import evaluate

options, evaluation = snakemake.params.args, snakemake.params.evaluation
work = Path(snakemake.output.speed).parent / f".ultralytics_{snakemake.wildcards.cfg}"
# Test images as the configuration's jobs read them (shrunk to its size where the copy is).
images = [str(path) for path in split_images(Path(snakemake.input.dataset), "test")][: options["images"]]
with model_job(snakemake, work) as job:
    device = job.device
    on_gpu = device != "cpu"
    timing = {"images": images, "imgsz": options["imgsz"], "batches": options["batch"], "warmup": options["warmup"]}
    rows = time_model(
        Path(snakemake.input.weights),
        device=device,
        half_options=[False, True] if on_gpu and options["half"] else [False],
        repeats=options["repeats"] if on_gpu else options["cpu_repeats"],
        **timing,
    )
    pytorch = json.loads(Path(snakemake.input.metrics).read_text())
    for row in rows:
        row.update({"split": evaluation["split"], "mAP50": pytorch["mAP50"], "mAP50-95": pytorch["mAP50-95"]})
    for exported in map(Path, snakemake.input.exported):
        fmt = exported.suffix[1:]
        measured = time_model(
            exported, device="cpu", half_options=[False], repeats=options["cpu_repeats"], fmt=fmt, **timing
        )
        accuracy = evaluate(
            exported,
            Path(snakemake.input.dataset),
            evaluation["split"],
            options["imgsz"],
            evaluation["batch"],
            "cpu",
            work / f"val-{fmt}",
            plots=False,
            conf=evaluation["conf"],
            iou=evaluation["iou"],
        )
        for row in measured:
            row.update(split=evaluation["split"], mAP50=accuracy.box.map50, **{"mAP50-95": accuracy.box.map})
        rows += measured
for row in rows:
    row["config"] = snakemake.wildcards.cfg
    job.log.info("%(format)s batch %(batch)s half %(half)s: %(latency_ms).2f ms/image, mAP50-95 %(mAP50-95).4f", row)
atomic_write_csv(snakemake.output.speed, rows, SPEED_FIELDS)
record_provenance(snakemake, job, Path(snakemake.input.weights))
