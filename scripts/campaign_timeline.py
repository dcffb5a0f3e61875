"""Rule campaign_timeline: which configuration ran where and when, and how busy each device was."""

from pathlib import Path

from campaign.core.io import atomic_write_text, job_logger
from campaign.core.layout import by_config
from campaign.reporting import figures

log = job_logger(snakemake.log[0])
intervals = figures.device_intervals(by_config(snakemake.input.monitors, list(snakemake.params.configs)))
fractions = figures.busy_fractions(intervals)
atomic_write_text(snakemake.output.usage, fractions.to_csv(index=False))
figures.campaign_timeline(intervals, fractions, Path(snakemake.output.figure))
log.info("device usage:\n%s", fractions.to_string(index=False))
