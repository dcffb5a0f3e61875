"""Rule split_dataset: manifest -> train/val/test lists, dataset yaml, leakage check."""

import csv

from campaign.io import atomic_write_csv, atomic_write_text, job_logger
from campaign.splitting import assign_splits, dataset_yaml, split_lists

log = job_logger(snakemake.log[0])
with open(snakemake.input.manifest, newline="") as stream:
    manifest = list(csv.DictReader(stream))
options = snakemake.params.splits
splits, leaks = assign_splits(manifest, options["seed"], options["val"], options["test"])
for name, text in split_lists(splits).items():
    atomic_write_text(snakemake.output[name], text)
    log.info("%s: %d images", name, text.count("\n"))
atomic_write_text(snakemake.output.dataset, dataset_yaml(list(snakemake.params.classes)))
atomic_write_csv(snakemake.output.leakage, leaks, ["image_a", "split_a", "image_b", "split_b", "hash_distance"])
if leaks:
    log.warning("%d near-duplicate pairs cross splits (see %s)", len(leaks), snakemake.output.leakage)
else:
    log.info("no near-duplicate pair crosses splits")
