"""Assign cleaned images to train/val/test: deterministic, stable, leak-aware.

- A group's own split (split lists or Roboflow folders) is honoured.
- Other images are placed by a seeded hash of their content, so adding
  images never moves an existing one to another split, and the result is the
  same on any machine. With a hash, every class gets the configured fractions
  in expectation; the dataset overview figure shows the counts reached.
- Near-duplicates (same photo re-encoded or resized, consecutive frames) are
  clustered by perceptual hash and placed together; pairs that still cross
  splits (because a group assigned them so) are reported as leakage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

SPLIT_NAMES = ("train", "val", "test")
# Hamming distance between 256-bit average hashes at or below which two
# images are taken as the same scene (re-encoded, resized, the next frame).
NEAR_DUPLICATE_BITS = 14


def _unit_interval(text: str) -> float:
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hashed_split(key: str, seed: int, val: float, test: float) -> str:
    u = _unit_interval(f"{seed}:{key}")
    if u < test:
        return "test"
    if u < test + val:
        return "val"
    return "train"


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


def assign_splits(manifest: list[dict], seed: int, val: float, test: float) -> tuple[dict[str, str], list[dict]]:
    """Return the split of each manifest image, and near-duplicate pairs across splits."""
    clusters = near_duplicate_clusters([row["ahash"] for row in manifest])
    members: dict[int, list[int]] = {}
    for index, cluster in enumerate(clusters):
        members.setdefault(cluster, []).append(index)

    splits: dict[str, str] = {}
    for indices in members.values():
        given = sorted({manifest[i]["group_split"] for i in indices} - {""})
        # The cluster is keyed by its smallest content hash: independent of
        # file names and of the other images in the upload.
        key = min(manifest[i]["image_sha256"] for i in indices)
        fallback = given[0] if len(given) == 1 else hashed_split(key, seed, val, test)
        for i in indices:
            splits[manifest[i]["image"]] = manifest[i]["group_split"] or fallback

    leaks = []
    for indices in members.values():
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
    return splits, leaks


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
