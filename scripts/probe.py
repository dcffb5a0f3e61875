"""Rule probe: time per image and peak memory of a few training steps of one (model, batch, size, freeze)."""

from pathlib import Path

from campaign.io import atomic_write_csv, job_logger
from campaign.jobs import leased_device
from campaign.probe import PROBE_FIELDS, probe
from campaign.speed import device_name
from campaign.yolo_env import prepare_ultralytics

log = job_logger(snakemake.log[0])
args = snakemake.params.args
out = Path(snakemake.output.probe).with_suffix("")
prepare_ultralytics(out / ".ultralytics", tensorboard=False)
# Planned on a machine without a GPU, the probe measures the CPU (the plan then speaks of CPU-hours).
with leased_device(snakemake, log, cpu_allowed=True) as lease:
    device = lease.ultralytics_device()
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
    log.info("%s", row)
atomic_write_csv(snakemake.output.probe, rows, PROBE_FIELDS)
