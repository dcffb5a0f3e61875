"""Rule split_dataset: manifest (+ split lock) -> train/val/test lists, dataset yaml, leakage check."""

import csv
from pathlib import Path

from campaign.core.io import atomic_write_csv, atomic_write_text, job_logger
from campaign.dataset.splitting import (
    SplitLockError,
    assign_splits,
    dataset_yaml,
    moved_by_groups,
    read_lock,
    split_fractions,
    split_lists,
    update_lock,
)

log = job_logger(snakemake.log[0])
with open(snakemake.input.manifest, newline="") as stream:
    manifest = list(csv.DictReader(stream))
options = snakemake.params.splits
lock = Path(options["lock"]) if options["lock"] else None
try:
    locked = read_lock(lock) if lock else {}
except SplitLockError as error:
    log.error("%s", error)
    raise SystemExit(1) from None
assignment = assign_splits(manifest, options["seed"], options["val"], options["test"], locked)
targets = split_fractions(options["val"], options["test"])
for name, text in split_lists(assignment.splits).items():
    atomic_write_text(snakemake.output[name], text)
    count = text.count("\n")
    log.info(
        "%s: %d images, %.1f%% (target %.1f%%)", name, count, 100 * count / max(1, len(manifest)), 100 * targets[name]
    )
log.info(
    "placed by the group's own split: %d, by the split lock: %d, beside a near-duplicate: %d, stratified: %d",
    *(assignment.count(reason) for reason in ("group", "lock", "near-duplicate", "stratified")),
)
atomic_write_text(snakemake.output.dataset, dataset_yaml(list(snakemake.params.classes)))
atomic_write_csv(
    snakemake.output.leakage, assignment.leaks, ["image_a", "split_a", "image_b", "split_b", "hash_distance"]
)
if assignment.leaks:
    log.warning("%d near-duplicate pairs cross splits (see %s)", len(assignment.leaks), snakemake.output.leakage)
else:
    log.info("no near-duplicate pair crosses splits")

if assignment.count("lock"):
    log.info(
        "%d images keep the split recorded in %s: changed fractions or seed apply to new images only "
        "(delete the lock to split everything afresh)",
        assignment.count("lock"),
        lock,
    )
if lock is None:
    log.info("no split lock (splits.lock is null): adding images may move existing ones to another split")
else:
    for row in moved_by_groups(locked, manifest, assignment.splits):
        log.warning(
            "%s moves from %s to %s, as its group's split list says",
            row["image"],
            locked[row["image_sha256"]],
            row["group_split"],
        )
    # Written after the outputs: the lock records splits that were completed.
    held = update_lock(lock, locked, manifest, assignment.splits)
    if held is None:
        log.info("split lock %s unchanged", lock)
    else:
        log.info("split lock %s updated: %d images (commit it beside the config)", lock, held)
