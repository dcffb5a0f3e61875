"""Rule pretrain: a model's own pretrained checkpoint, trained on generic source shapes."""

from campaign.training import run_training_job

run_training_job(snakemake)
