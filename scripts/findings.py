"""Rule findings: every pair of configurations that differ in one argument, with the paired interval."""

from campaign.core.io import atomic_write_csv, atomic_write_text, job_logger
from campaign.core.layout import by_config
from campaign.core.records import read_json_record
from campaign.evaluation.comparison import findings, load_groups
from campaign.reporting.summary import batch_note, html_table

log = job_logger(snakemake.log[0])
params = snakemake.params
split, bootstrap = params.split, params.bootstrap
names = [run["config"] for run in params.runs]
intervals, resampled = by_config(snakemake.input.intervals, names), by_config(snakemake.input.bootstrap, names)
trained = by_config(snakemake.input.train, names)
groups = load_groups(list(params.runs), intervals, resampled)
# A group trained partly at another batch than configured, in any of its seeds.
notes: dict[str, list[str]] = {}
for run in params.runs:
    note = batch_note(run["batch"], read_json_record(trained[run["config"]]))
    if note:
        notes.setdefault(run["group"], []).append(note)
rows = findings(
    groups, params.metric, split, bootstrap["seed"], bootstrap["level"], {g: "; ".join(n) for g, n in notes.items()}
)
fields = list(rows[0]) if rows else ["argument", "answer"]
seeds = "" if any(len(group.runs) > 1 for group in groups) else " (one seed each: intervals cover the test images only)"
atomic_write_csv(snakemake.output.csv, rows, fields)
atomic_write_text(snakemake.output.html, html_table(rows, f"Findings: {params.metric} on {split}{seeds}"))
shown = sum(row["excludes_zero"] for row in rows)
held = sum(row["answer_adjusted"].endswith("higher") for row in rows)
log.info(
    "%d comparisons of %d configurations; %d show a difference, %d after Holm's adjustment over all %d",
    len(rows),
    len(groups),
    shown,
    held,
    len(rows),
)
