"""Assign cleaned images to train/val/test: deterministic, stratified, stable, leak-aware.

- A group's own split (split lists or Roboflow folders) is honoured.
- Every other image is placed by iterative stratification (Sechidis et al.,
  2011): clusters of images are taken rarest class first and each goes to the
  split furthest below its share of that class, so every class, a rare one
  included, gets the configured fractions up to one cluster.
- Stratifying needs the whole dataset, so on its own it could move an image
  when others are added. The split lock (`splits.lock`, a CSV of image content
  hash -> split, written after every split and meant to be committed beside
  the config) makes it stable: locked images keep their split and only new
  images are stratified, towards the targets of the grown dataset.
- Near-duplicates (same photo re-encoded or resized, consecutive frames) are
  clustered by perceptual hash and placed together; pairs that still cross
  splits (because a group assigned them so) are reported as leakage.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from campaign.core.io import atomic_write_text, csv_text

SPLIT_NAMES = ("train", "val", "test")
LOCK_FIELDS = ["image_sha256", "split", "image"]
BACKGROUND = "background"  # the stratum of images without boxes
# Hamming distance between 256-bit average hashes at or below which two
# images are taken as the same scene (re-encoded, resized, the next frame).
NEAR_DUPLICATE_BITS = 14


class SplitLockError(ValueError):
    """The split lock cannot be read; the message names the file and line."""


@dataclass
class Assignment:
    splits: dict[str, str]  # image path -> split
    reasons: dict[str, str]  # image path -> "group", "lock", "near-duplicate" or "stratified"
    leaks: list[dict] = field(default_factory=list)

    def count(self, reason: str) -> int:
        return sum(1 for value in self.reasons.values() if value == reason)


def _unit_interval(text: str) -> float:
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_fractions(val: float, test: float) -> dict[str, float]:
    return {"train": 1.0 - val - test, "val": val, "test": test}


def near_duplicate_clusters(hashes: Sequence[str], max_bits: int = NEAR_DUPLICATE_BITS) -> list[int]:
    """Cluster id (index of the cluster's first member) for each hash, by union-find."""
    # Each hash as four 64-bit words, so numpy can XOR and count bits.
    values = np.array(
        [[int(h[k : k + 16], 16) for k in range(0, len(h), 16)] for h in hashes], dtype=np.uint64
    ).reshape(len(hashes), -1)
    parent = list(range(len(values)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(values) - 1):
        distances = np.bitwise_count(values[i + 1 :] ^ values[i]).sum(axis=1)
        for j in np.flatnonzero(distances <= max_bits) + i + 1:
            a, b = find(i), find(int(j))
            parent[max(a, b)] = min(a, b)
    return [find(i) for i in range(len(values))]


def image_strata(row: Mapping) -> list[str]:
    """The classes an image shows (manifest `classes`: space-separated ids), or background."""
    return row.get("classes", "").split() or [BACKGROUND]


def stratify(
    clusters: list[list[Mapping]],
    fixed: list[tuple[Mapping, str]],
    fractions: Mapping[str, float],
    seed: int,
) -> list[str]:
    """Split of each cluster, so that fixed plus new images approach the fractions per class.

    Iterative stratification over clusters: while clusters are left, take the
    class with the fewest images still to place; each cluster showing it (in a
    seeded hash order) goes to the split that most lacks that class, then the
    one that most lacks images, then a seeded draw. The targets count the fixed
    images (group splits, the lock), so new images make up for their imbalance.
    """
    open_splits = [name for name in SPLIT_NAMES if fractions[name] > 0]
    strata = [[stratum for row in members for stratum in image_strata(row)] for members in clusters]
    totals: dict[str, int] = {}
    for stratum in [s for row, _ in fixed for s in image_strata(row)] + [s for c in strata for s in c]:
        totals[stratum] = totals.get(stratum, 0) + 1
    images = len(fixed) + sum(len(members) for members in clusters)
    lacking = {name: {s: fractions[name] * n for s, n in totals.items()} for name in SPLIT_NAMES}
    lacking_images = {name: fractions[name] * images for name in SPLIT_NAMES}

    def place(rows_strata: list[str], size: int, split: str) -> None:
        for stratum in rows_strata:
            lacking[split][stratum] -= 1
        lacking_images[split] -= size

    for row, split in fixed:
        place(image_strata(row), 1, split)

    keys = [f"{seed}:{min(row['image_sha256'] for row in members)}" for members in clusters]
    order = sorted(range(len(clusters)), key=lambda index: (_unit_interval(keys[index]), keys[index]))
    chosen: list[str | None] = [None] * len(clusters)
    remaining = set(order)
    while remaining:
        pending: dict[str, int] = {}
        for index in remaining:
            for stratum in strata[index]:
                pending[stratum] = pending.get(stratum, 0) + 1
        rarest = min(pending, key=lambda stratum: (pending[stratum], stratum))
        for index in [i for i in order if i in remaining and rarest in strata[i]]:
            split = max(
                open_splits,
                key=lambda name: (
                    lacking[name][rarest],
                    lacking_images[name],
                    _unit_interval(f"{keys[index]}:{name}"),
                ),
            )
            place(strata[index], len(clusters[index]), split)
            chosen[index] = split
            remaining.discard(index)
    assert None not in chosen  # every cluster shows a stratum, so each was placed
    return [str(split) for split in chosen]


def assign_splits(
    manifest: list[dict],
    seed: int,
    val: float,
    test: float,
    locked: Mapping[str, str] | None = None,
) -> Assignment:
    """Split of each manifest image (group split, else lock, else stratified) and the leaks."""
    locked = locked or {}
    clusters = near_duplicate_clusters([row["ahash"] for row in manifest])
    members: dict[int, list[int]] = {}
    for index, cluster in enumerate(clusters):
        members.setdefault(cluster, []).append(index)

    splits: dict[str, str] = {}
    reasons: dict[str, str] = {}
    to_stratify: list[list[int]] = []
    for indices in members.values():
        for i in indices:
            row = manifest[i]
            if row["group_split"]:
                splits[row["image"]], reasons[row["image"]] = row["group_split"], "group"
            elif row["image_sha256"] in locked:
                splits[row["image"]], reasons[row["image"]] = locked[row["image_sha256"]], "lock"
        open_members = [i for i in indices if manifest[i]["image"] not in splits]
        if not open_members:
            continue
        # A new image joins the split its near-duplicates already have.
        taken = sorted({splits[manifest[i]["image"]] for i in indices if manifest[i]["image"] in splits})
        if len(taken) == 1:
            for i in open_members:
                splits[manifest[i]["image"]], reasons[manifest[i]["image"]] = taken[0], "near-duplicate"
        else:
            to_stratify.append(open_members)

    fixed = [(row, splits[row["image"]]) for row in manifest if row["image"] in splits]
    clusters_rows = [[manifest[i] for i in indices] for indices in to_stratify]
    for indices, split in zip(to_stratify, stratify(clusters_rows, fixed, split_fractions(val, test), seed)):
        for i in indices:
            splits[manifest[i]["image"]], reasons[manifest[i]["image"]] = split, "stratified"
    return Assignment(splits, reasons, crossing_pairs(manifest, members.values(), splits))


def crossing_pairs(manifest: list[dict], clusters, splits: Mapping[str, str]) -> list[dict]:
    """Near-duplicate pairs placed in different splits."""
    leaks = []
    for indices in clusters:
        for position, i in enumerate(indices):
            for j in indices[position + 1 :]:
                a, b = manifest[i], manifest[j]
                if splits[a["image"]] != splits[b["image"]]:
                    distance = (int(a["ahash"], 16) ^ int(b["ahash"], 16)).bit_count()
                    leaks.append(
                        {
                            "image_a": a["image"],
                            "split_a": splits[a["image"]],
                            "image_b": b["image"],
                            "split_b": splits[b["image"]],
                            "hash_distance": distance,
                        }
                    )
    return leaks


def read_lock(path: str | Path) -> dict[str, str]:
    """image sha256 -> split from a split lock; an absent file is an empty lock."""
    path = Path(path)
    if not path.is_file():
        return {}
    locked: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        missing = [name for name in LOCK_FIELDS[:2] if name not in (reader.fieldnames or [])]
        if missing:
            raise SplitLockError(
                f"{path}: the header lacks {', '.join(missing)}; a split lock starts with "
                f"'{','.join(LOCK_FIELDS)}'. Restore it from version control or delete it to split afresh."
            )
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            digest, split = (row["image_sha256"] or "").strip().lower(), (row["split"] or "").strip()
            if split not in SPLIT_NAMES:
                raise SplitLockError(f"{where}: split {split!r} is none of {', '.join(SPLIT_NAMES)}")
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise SplitLockError(f"{where}: {digest!r} is not a sha256 hex digest of an image")
            if locked.get(digest, split) != split:
                raise SplitLockError(f"{where}: image {digest} is locked to both {locked[digest]} and {split}")
            locked[digest] = split
    return locked


def lock_rows(previous: Mapping[str, str], manifest: list[dict], splits: Mapping[str, str]) -> list[dict]:
    """The updated lock: every image of this split, and earlier entries for images absent now.

    Absent images stay locked, so an image removed and uploaded again returns to its split.
    """
    rows = {digest: {"image_sha256": digest, "split": split, "image": ""} for digest, split in previous.items()}
    for row in manifest:
        rows[row["image_sha256"]] = {
            "image_sha256": row["image_sha256"],
            "split": splits[row["image"]],
            "image": row["image"],
        }
    return [rows[digest] for digest in sorted(rows)]


def moved_by_groups(locked: Mapping[str, str], manifest: list[dict], splits: Mapping[str, str]) -> list[dict]:
    """Manifest rows whose group's own split now differs from the split the lock recorded."""
    return [
        row for row in manifest if row["image_sha256"] in locked and locked[row["image_sha256"]] != splits[row["image"]]
    ]


def update_lock(path: Path, locked: Mapping[str, str], manifest: list[dict], splits: Mapping[str, str]) -> int | None:
    """Rewrite the lock with this split; the number of images it holds, or None when it did not change.

    Unchanged, it is left alone: no churn under version control.
    """
    text = csv_text(lock_rows(locked, manifest, splits), LOCK_FIELDS)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return None
    atomic_write_text(path, text)
    return text.count("\n") - 1


def dataset_yaml(classes: list[str]) -> str:
    """Ultralytics dataset file; split lists sit beside it, so no absolute path is needed."""
    names = "".join(f"  {index}: {name}\n" for index, name in enumerate(classes))
    return f"train: train.txt\nval: val.txt\ntest: test.txt\nnames:\n{names}"


def split_lists(splits: dict[str, str]) -> dict[str, str]:
    """Text of each split list, `./images/...` lines relative to the list's folder."""
    lines: dict[str, list[str]] = {name: [] for name in SPLIT_NAMES}
    for image in sorted(splits):
        lines[splits[image]].append(f"./{image}\n")
    return {name: "".join(entries) for name, entries in lines.items()}
