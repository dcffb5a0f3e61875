"""Rule pretrain: a model's own pretrained checkpoint, trained on generic source shapes."""

from campaign.adapters.rule_job import run_training

run_training(snakemake)
