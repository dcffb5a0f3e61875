"""Rule summary_table: the campaign's comparison table, as CSV, Markdown and a sortable HTML page."""

from campaign.io import atomic_write_csv, atomic_write_text, job_logger
from campaign.summary import html_table, markdown_table, summary_rows

log = job_logger(snakemake.log[0])
rows = summary_rows(list(snakemake.params.configs), list(snakemake.params.splits))
fields = list(rows[0]) if rows else ["config"]
atomic_write_csv(snakemake.output.csv, rows, fields)
atomic_write_text(snakemake.output.markdown, markdown_table(rows))
atomic_write_text(snakemake.output.html, html_table(rows, "Campaign comparison"))
log.info("summary of %d configurations written", len(rows))
