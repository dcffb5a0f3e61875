"""Rule speed: one configuration's speed table, its network's timing beside its own accuracy in each format.

The timing is its network's (rule latency, made once per network on the
first configuration with it): latency does not depend on the training's
batch, freeze or seed. The accuracy is this configuration's: the PyTorch
model's from its evaluation, each exported model's validated here on the
same split, on the CPU.
"""

import csv
from pathlib import Path

from campaign.adapters.rule_job import model_job, record_provenance
from campaign.core.io import atomic_write_csv
from campaign.core.records import read_json_record
from campaign.evaluation.timing import SPEED_FIELDS
from campaign.evaluation.validation import evaluate

evaluation = snakemake.params.evaluation
cfg = snakemake.wildcards.cfg
work = Path(snakemake.output.speed).parent / f".ultralytics_{cfg}"
with open(snakemake.input.latency, newline="") as stream:
    rows = list(csv.DictReader(stream))
with model_job(snakemake, work) as job:
    pytorch = read_json_record(snakemake.input.metrics, required=("mAP50", "mAP50-95"))
    accuracy = {"pytorch": (pytorch["mAP50"], pytorch["mAP50-95"])}
    for exported in map(Path, snakemake.input.exported):
        metrics = evaluate(
            exported,
            Path(snakemake.input.dataset),
            evaluation["split"],
            pytorch["imgsz"],
            evaluation["batch"],
            "cpu",
            work / f"val-{exported.suffix[1:]}",
            plots=False,
            conf=evaluation["conf"],
            iou=evaluation["iou"],
        )
        accuracy[exported.suffix[1:]] = (metrics.box.map50, metrics.box.map)
for row in rows:
    map50, map50_95 = accuracy[row["format"]]
    row.update({"config": cfg, "split": evaluation["split"], "mAP50": map50, "mAP50-95": map50_95})
    job.log.info("%(format)s %(measure)s batch %(batch)s half %(half)s: %(latency_ms)s ms/image", row)
atomic_write_csv(snakemake.output.speed, rows, SPEED_FIELDS)
record_provenance(snakemake, job, Path(snakemake.input.weights))
