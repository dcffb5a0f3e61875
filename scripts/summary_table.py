"""Rule summary_table: the campaign's comparison table (one row per training) and its seed groups."""

from pathlib import Path

from campaign.comparison import group_table
from campaign.io import atomic_write_csv, atomic_write_text, job_logger
from campaign.summary import html_table, markdown_table, summary_rows

log = job_logger(snakemake.log[0])
splits = list(snakemake.params.splits)
rows = summary_rows(list(snakemake.params.configs), splits)
fields = list(rows[0]) if rows else ["config"]
atomic_write_csv(snakemake.output.csv, rows, fields)
atomic_write_text(snakemake.output.markdown, markdown_table(rows))
atomic_write_text(snakemake.output.html, html_table(rows, "Campaign comparison"))
seed, level = snakemake.params.bootstrap["seed"], snakemake.params.bootstrap["level"]
groups = group_table(rows, snakemake.params.comparison_keys, splits, Path("results"), seed, level)
atomic_write_csv(snakemake.output.groups, groups, list(groups[0]) if groups else ["group"])
log.info("summary of %d trainings in %d configurations written", len(rows), len(groups))
