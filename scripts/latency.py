"""Rule latency: the timing of one network, on the configuration's weights, shared by every configuration with it.

Batch 1 and N, fp32 (and fp16 on a GPU), in each format: PyTorch on the
job's device, exported models on the CPU (ONNX Runtime). The job leases a
whole GPU and takes every core, and checks that nothing outside Snakemake's
accounts ran beside it (timing.exclusively); each row records what it found.
Test images as the configuration's jobs read them give the network's
latency; full-size test photos, the latency from a file to its boxes.
"""

from functools import partial
from pathlib import Path

from campaign.adapters.rule_job import model_job, record_provenance
from campaign.core.io import atomic_write_csv
from campaign.dataset.resizing import split_images
from campaign.evaluation.timing import SPEED_FIELDS, exclusively, time_model

options = snakemake.params.args
work = Path(snakemake.output.latency).parent / f".ultralytics_{snakemake.wildcards.cfg}"
count = options["images"]
images = [str(path) for path in split_images(Path(snakemake.input.dataset), "test")][:count]
photos = [str(path) for path in split_images(Path(snakemake.input.photos), "test")][:count]
with model_job(snakemake, work) as job:
    on_gpu = job.device != "cpu"
    timing = partial(
        time_model,
        images=images,
        photos=photos,
        imgsz=options["imgsz"],
        batches=options["batch"],
        warmup=options["warmup"],
    )
    pytorch = partial(
        timing,
        Path(snakemake.input.weights),
        device=job.device,
        half_options=[False, True] if on_gpu and options["half"] else [False],
        repeats=options["repeats"] if on_gpu else options["cpu_repeats"],
    )
    rows = exclusively(pytorch, job.device, job.log)
    for exported in map(Path, snakemake.input.exported):
        exported_timing = partial(
            timing,
            exported,
            device="cpu",
            half_options=[False],
            repeats=options["cpu_repeats"],
            fmt=exported.suffix[1:],
        )
        rows += exclusively(exported_timing, "cpu", job.log)
for row in rows:
    row["timed_config"] = snakemake.wildcards.cfg
    job.log.info(
        "%(format)s %(measure)s batch %(batch)s half %(half)s on %(device)s: %(latency_ms).2f ms/image "
        "(p10-p90 %(latency_ms_p10).2f-%(latency_ms_p90).2f; %(input)s; other processes %(other_cores).2f cores)",
        row,
    )
atomic_write_csv(snakemake.output.latency, rows, SPEED_FIELDS)
record_provenance(snakemake, job, Path(snakemake.input.weights))
