"""Rule export: one configuration's best weights in a deployment format (ONNX), for the speed study."""

from pathlib import Path

from campaign.adapters.rule_job import model_job, record_provenance
from campaign.evaluation.timing import export_model

out = Path(snakemake.output.model)
args = snakemake.params.args
# An export runs on the CPU: the rule declares no GPU, so the lease is the CPU's.
with model_job(snakemake, out.parent / ".ultralytics") as job:
    export_model(
        Path(snakemake.input.weights), args["format"], args["imgsz"], out, out.parent / f"work-{args['format']}"
    )
record_provenance(snakemake, job, Path(snakemake.input.weights))
job.log.info("%s exported to %s (%d bytes)", snakemake.wildcards.cfg, out, out.stat().st_size)
