"""Rule findings: every pair of configurations that differ in one argument, with the paired interval."""

from campaign.core.io import atomic_write_csv, atomic_write_text, job_logger
from campaign.core.layout import by_config
from campaign.evaluation.comparison import findings, load_groups
from campaign.reporting.summary import html_table

log = job_logger(snakemake.log[0])
params = snakemake.params
split, bootstrap = params.split, params.bootstrap
names = [run["config"] for run in params.runs]
intervals, resampled = by_config(snakemake.input.intervals, names), by_config(snakemake.input.bootstrap, names)
groups = load_groups(list(params.runs), intervals, resampled)
rows = findings(groups, params.metric, split, bootstrap["seed"], bootstrap["level"])
fields = list(rows[0]) if rows else ["argument", "answer"]
atomic_write_csv(snakemake.output.csv, rows, fields)
atomic_write_text(snakemake.output.html, html_table(rows, f"Findings: {params.metric} on {split}"))
shown = sum(row["excludes_zero"] for row in rows)
log.info("%d comparisons of %d configurations; %d show a difference", len(rows), len(groups), shown)
