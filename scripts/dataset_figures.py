"""Rule dataset_figures: dataset overview table and label analysis per class and split."""

from pathlib import Path

from campaign.core.io import atomic_write_text, job_logger
from campaign.reporting import figures

log = job_logger(snakemake.log[0])
classes = list(snakemake.params.classes)
lists = {split: Path(snakemake.input[split]) for split in ("train", "val", "test")}
boxes, overview = figures.dataset_tables(Path(snakemake.input.manifest), lists, classes)
atomic_write_text(snakemake.output.overview_csv, overview.to_csv(index=False))
figures.dataset_overview(overview, Path(snakemake.output.overview))
figures.label_analysis(boxes, classes, Path(snakemake.output.labels))
log.info("dataset overview:\n%s", overview.to_string(index=False))
