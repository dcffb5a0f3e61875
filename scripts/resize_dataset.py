"""Rule resize_dataset: the cleaned dataset, shrunk to one training image size."""

import time
from pathlib import Path

from campaign.core.io import job_logger
from campaign.dataset.resizing import write_resized_copy

log = job_logger(snakemake.log[0])
imgsz = int(snakemake.wildcards.imgsz)
started = time.perf_counter()
result = write_resized_copy(
    Path(snakemake.input.dataset), Path(snakemake.output.dataset).parent, imgsz, workers=snakemake.threads
)
log.info("%s, in %.1f s", result.line(imgsz), time.perf_counter() - started)
