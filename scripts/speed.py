"""Rule speed: latency per stage and throughput of one configuration, batch 1 and N.

The job leases a whole GPU (no other job on it) and takes every core, so that
nothing else runs on the machine while it measures.
"""

from pathlib import Path

from campaign.io import atomic_write_csv, job_logger
from campaign.jobs import leased_device
from campaign.provenance import now, write_job_provenance
from campaign.speed import SPEED_FIELDS, time_model
from campaign.yolo_env import prepare_ultralytics

log = job_logger(snakemake.log[0])
started = now()
options = snakemake.params.args
prepare_ultralytics(Path(snakemake.output.speed).parent / f".ultralytics_{snakemake.wildcards.cfg}", tensorboard=False)
test_list = Path(snakemake.input.test)
images = [str(test_list.parent / line.strip()) for line in test_list.read_text().splitlines() if line.strip()]
images = images[: options["images"]]
with leased_device(snakemake, log) as lease:
    device = lease.ultralytics_device()
    on_gpu = device != "cpu"
    rows = time_model(
        Path(snakemake.input.weights),
        images,
        options["imgsz"],
        device,
        batches=options["batch"],
        half_options=[False, True] if on_gpu and options["half"] else [False],
        warmup=options["warmup"],
        repeats=options["repeats"] if on_gpu else options["cpu_repeats"],
    )
for row in rows:
    row["config"] = snakemake.wildcards.cfg
    log.info("batch %(batch)s half %(half)s: %(latency_ms).2f ms/image, %(throughput_ips).1f images/s", row)
atomic_write_csv(snakemake.output.speed, rows, SPEED_FIELDS)
write_job_provenance(snakemake, Path(snakemake.output.provenance), device, started, Path(snakemake.input.weights))
