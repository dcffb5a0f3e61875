"""Rule clean_dataset: raw group uploads -> one clean YOLO dataset + report."""

from pathlib import Path

from campaign.core.io import job_logger, say_on_terminal
from campaign.dataset.cleaning import clean_upload, write_outputs
from campaign.dataset.upload_checks import CleaningError

log = job_logger(snakemake.log[0])
out = Path(snakemake.output.images).parent
try:
    result = clean_upload(
        # The folder from the config, not a param: its files are the rule's inputs, and a param
        # added to a finished campaign's cleaning would make Snakemake redo it and every training.
        raw=Path(snakemake.config["dataset"]["raw"]),
        out=out,
        classes=list(snakemake.params.classes),
        class_maps=dict(snakemake.params.class_map),
        min_box_px=snakemake.params.min_box_px,
        background_groups=list(snakemake.params.background_groups),
        prefer_groups=list(snakemake.params.prefer_groups),
        max_pixels=snakemake.params.max_pixels,
        workers=snakemake.threads,
        log=log,
    )
except CleaningError as error:
    log.error("%s", error)
    say_on_terminal(f"clean_dataset stopped: {error}")
    raise SystemExit(1) from None
summary = write_outputs(
    result,
    Path(snakemake.output.report),
    Path(snakemake.output.manifest),
    Path(snakemake.output.summary),
    Path(snakemake.output.details),
)
log.info("\n%s", summary)
# Last in the log, so that nobody misses boxes and images that will not be trained on; and on the terminal.
for line in result.warnings():
    log.warning("%s (see cleaning_report.csv)", line)
say_on_terminal(result.screen_summary(Path(snakemake.output.report)))
