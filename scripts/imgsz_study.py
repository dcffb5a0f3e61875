"""Rule imgsz_study: mAP and latency of one configuration over a list of image sizes."""

from pathlib import Path

from campaign.adapters.rule_job import model_job, record_provenance
from campaign.core.io import atomic_write_csv
from campaign.evaluation.validation import STUDY_FIELDS, image_size_study

args = snakemake.params.args
out_dir = Path(snakemake.output.study).with_suffix("")
with model_job(snakemake, out_dir / ".ultralytics") as job:
    # Sizes up to the training size read the copy shrunk to it; larger ones the full-size images.
    data_by_size = {
        size: Path(snakemake.input.dataset if size <= snakemake.params.resized_to else snakemake.input.full_size)
        for size in args["imgsz"]
    }
    for size, data in data_by_size.items():
        job.log.info("imgsz %s from %s", size, data)
    rows = image_size_study(
        Path(snakemake.input.weights),
        data_by_size,
        args["split"],
        args["batch"],
        job.device,
        out_dir,
        conf=args["conf"],
        iou=args["iou"],
    )
for row in rows:
    row["config"] = snakemake.wildcards.cfg
    job.log.info("imgsz %(imgsz)s: mAP50-95 %(mAP50-95).3f, inference %(inference_ms).2f ms/image", row)
atomic_write_csv(snakemake.output.study, rows, STUDY_FIELDS)
record_provenance(snakemake, job, Path(snakemake.input.weights))
