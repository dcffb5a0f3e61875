"""Rule imgsz_study: mAP and latency of one configuration over a list of image sizes."""

from pathlib import Path

from campaign.evaluation import STUDY_FIELDS, image_size_study
from campaign.io import atomic_write_csv, job_logger
from campaign.jobs import leased_device
from campaign.provenance import now, write_job_provenance
from campaign.yolo_env import prepare_ultralytics

log = job_logger(snakemake.log[0])
started = now()
args = snakemake.params.args
out_dir = Path(snakemake.output.study).with_suffix("")
prepare_ultralytics(out_dir / ".ultralytics", tensorboard=False)
with leased_device(snakemake, log) as lease:
    device = lease.ultralytics_device()
    # Sizes up to the training size read the copy shrunk to it; larger ones the full-size images.
    data_by_size = {
        size: Path(snakemake.input.dataset if size <= snakemake.params.resized_to else snakemake.input.full_size)
        for size in args["imgsz"]
    }
    for size, data in data_by_size.items():
        log.info("imgsz %s from %s", size, data)
    rows = image_size_study(
        Path(snakemake.input.weights),
        data_by_size,
        args["split"],
        args["batch"],
        device,
        out_dir,
        conf=args["conf"],
        iou=args["iou"],
    )
for row in rows:
    row["config"] = snakemake.wildcards.cfg
    log.info("imgsz %(imgsz)s: mAP50-95 %(mAP50-95).3f, inference %(inference_ms).2f ms/image", row)
atomic_write_csv(snakemake.output.study, rows, STUDY_FIELDS)
write_job_provenance(snakemake, Path(snakemake.output.provenance), device, started, Path(snakemake.input.weights))
