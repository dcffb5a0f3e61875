"""Rule pretrain_source_data: generic shapes for pretraining, disjoint from the campaign's classes."""

from pathlib import Path

from campaign.core.io import job_logger
from campaign.dataset.synthetic import SOURCE_OBJECTS, write_yolo_dataset

log = job_logger(snakemake.log[0])
size = (snakemake.params.imgsz, snakemake.params.imgsz)
root = Path(snakemake.output.dataset).parent
write_yolo_dataset(root, SOURCE_OBJECTS, snakemake.params.images, snakemake.params.seed, size)
log.info("wrote %d source scenes of %s to %s", snakemake.params.images, sorted(SOURCE_OBJECTS), root)
