"""Rule plan_probes: every probe's rows in one table, for `campaign plan`."""

import csv

from campaign.core.io import atomic_write_csv, job_logger
from campaign.planning.probe import PROBE_FIELDS

log = job_logger(snakemake.log[0])
rows = [row for path in snakemake.input for row in csv.DictReader(open(path, newline=""))]
atomic_write_csv(snakemake.output[0], rows, PROBE_FIELDS)
log.info("%d probe rows from %d probes", len(rows), len(snakemake.input))
