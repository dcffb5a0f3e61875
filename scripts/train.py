"""Rule train: one campaign configuration, resumed if an earlier attempt was interrupted."""

from campaign.adapters.rule_job import run_training

run_training(snakemake)
