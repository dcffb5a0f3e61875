"""Rule probe: time per image and peak memory of a few training steps of one (model, batch, size, freeze)."""

from pathlib import Path

from campaign.adapters.rule_job import model_job
from campaign.core.io import atomic_write_csv
from campaign.evaluation.timing import device_name
from campaign.planning.probe import PROBE_FIELDS, probe

args = snakemake.params.args
out = Path(snakemake.output.probe).with_suffix("")
# Planned on a machine without a GPU, the probe measures the CPU (the plan then speaks of CPU-hours).
with model_job(snakemake, out / ".ultralytics", cpu_allowed=True) as job:
    device = job.device
    rows = probe(
        model=args["model"],
        data=Path(snakemake.input.dataset).resolve(),
        imgsz=args["imgsz"],
        batch=args["batch"],
        freeze=args["freeze"],
        device=device,
        device_name=device_name(device),
        iterations=snakemake.params.iterations,
        workers=max(1, snakemake.threads),
        out=out.resolve(),
        largest_trial=snakemake.params.cpu_batch if device == "cpu" else None,
    )
for row in rows:
    job.log.info("%s", row)
atomic_write_csv(snakemake.output.probe, rows, PROBE_FIELDS)
