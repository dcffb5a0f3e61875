"""Rule evaluate: metrics of one configuration on one split, plus Ultralytics' plots."""

import shutil
from pathlib import Path

import yaml

from campaign.adapters.rule_job import model_job, record_provenance
from campaign.evaluation.bootstrap import ImageMatches
from campaign.evaluation.validation import evaluate, write_metrics

args = snakemake.params.args
out_dir = Path(snakemake.output.metrics).parent
names = list(yaml.safe_load(Path(snakemake.input.dataset).read_text())["names"].values())
with model_job(snakemake, out_dir / ".ultralytics") as job:
    metrics = evaluate(
        Path(snakemake.input.weights),
        Path(snakemake.input.dataset),
        args["split"],
        args["imgsz"],
        args["batch"],
        job.device,
        out_dir,
        conf=args["conf"],
        iou=args["iou"],
    )
# Ultralytics' own plots of this validation, under the names the report uses.
for plot, output in (
    ("confusion_matrix_normalized.png", snakemake.output.confusion),
    ("BoxPR_curve.png", snakemake.output.pr_curve),
    ("BoxF1_curve.png", snakemake.output.f1_curve),
):
    shutil.copyfile(out_dir / plot, output)
overall = write_metrics(
    metrics,
    names,
    Path(snakemake.output.metrics),
    Path(snakemake.output.per_class),
    {
        "split": snakemake.wildcards.split,
        "config": snakemake.wildcards.cfg,
        "device": job.device,
        # The thresholds these numbers depend on, stated beside them.
        "imgsz": args["imgsz"],
        "conf": args["conf"],
        "iou": args["iou"],
    },
)
# Each image's matches, so the bootstrap never reruns validation.
ImageMatches.from_records(metrics.image_records).save(snakemake.output.matches)
record_provenance(snakemake, job, Path(snakemake.input.weights))
job.log.info("%s on %s: %s", snakemake.wildcards.cfg, snakemake.wildcards.split, overall)
