"""Rule summary_table: the campaign's comparison table (one row per training) and its seed groups."""

from campaign.core.io import atomic_write_csv, atomic_write_text, job_logger
from campaign.core.layout import by_config, by_config_and_split
from campaign.evaluation.comparison import group_table
from campaign.reporting.summary import RunFiles, html_table, markdown_table, summary_rows

log = job_logger(snakemake.log[0])
splits = list(snakemake.params.splits)
names = [parameters["config"] for parameters in snakemake.params.configs]
given = snakemake.input
files = RunFiles(
    train=by_config(given.train, names),
    provenance=by_config(given.provenance, names),
    speed=by_config(given.speed, names),
    metrics=by_config_and_split(given.metrics, names, splits),
    intervals=by_config_and_split(given.intervals, names, splits),
)
rows = summary_rows(list(snakemake.params.configs), splits, files)
fields = list(rows[0]) if rows else ["config"]
atomic_write_csv(snakemake.output.csv, rows, fields)
atomic_write_text(snakemake.output.markdown, markdown_table(rows))
atomic_write_text(snakemake.output.html, html_table(rows, "Campaign comparison"))
seed, level = snakemake.params.bootstrap["seed"], snakemake.params.bootstrap["level"]
resampled = by_config_and_split(given.bootstrap, names, splits)
groups = group_table(rows, snakemake.params.comparison_keys, splits, files.intervals, resampled, seed, level)
atomic_write_csv(snakemake.output.groups, groups, list(groups[0]) if groups else ["group"])
log.info("summary of %d trainings in %d configurations written", len(rows), len(groups))
