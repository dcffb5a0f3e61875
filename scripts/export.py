"""Rule export: one configuration's best weights in a deployment format (ONNX), for the speed study."""

from pathlib import Path

from campaign.io import job_logger
from campaign.provenance import now, write_job_provenance
from campaign.speed import export_model
from campaign.yolo_env import prepare_ultralytics

log = job_logger(snakemake.log[0])
started = now()
out = Path(snakemake.output.model)
prepare_ultralytics(out.parent / ".ultralytics", tensorboard=False)
args = snakemake.params.args
export_model(Path(snakemake.input.weights), args["format"], args["imgsz"], out, out.parent / f"work-{args['format']}")
write_job_provenance(snakemake, Path(snakemake.output.provenance), "cpu", started, Path(snakemake.input.weights))
log.info("%s exported to %s (%d bytes)", snakemake.wildcards.cfg, out, out.stat().st_size)
