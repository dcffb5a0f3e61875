"""Rule bootstrap: confidence intervals of one configuration's metrics on one split."""

from campaign.core.io import atomic_write_json, job_logger
from campaign.evaluation.bootstrap import ImageMatches, bootstrap_metrics, interval_summary, save_bootstrap

log = job_logger(snakemake.log[0])
settings = snakemake.params.bootstrap
matches = ImageMatches.load(snakemake.input.matches)
resampled = bootstrap_metrics(matches, settings["resamples"], settings["seed"])
summary = interval_summary(matches.metrics(), resampled, settings["level"])
summary.update(images=len(matches.images), images_hash=matches.images_hash(), seed=settings["seed"])
save_bootstrap(snakemake.output.resampled, resampled, matches.images_hash(), settings["seed"])
atomic_write_json(snakemake.output.intervals, summary)
log.info("%s on %s, %d images: %s", snakemake.wildcards.cfg, snakemake.wildcards.split, len(matches.images), summary)
