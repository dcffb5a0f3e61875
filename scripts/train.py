"""Rule train: one campaign configuration, resumed if an earlier attempt was interrupted."""

from campaign.training import run_training_job

run_training_job(snakemake)
