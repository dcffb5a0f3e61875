"""Bootstrap confidence intervals of detection metrics, resampling images.

A split of a few hundred images gives an mAP that moves by a few hundredths
when other images of the same kind are drawn: two configurations 0.02 apart
may not differ at all. Validation keeps, for every image, its predictions'
matches (true positive at each of the ten IoU thresholds), confidences and
classes, and its ground-truth classes; the images themselves are not needed
to recompute P, R, mAP50 and mAP50-95 on any multiset of them.

Each resample draws the split's images with replacement and recomputes the
metrics with Ultralytics' own `ap_per_class`, so the point estimate is
exactly the number `yolo val` prints. Resamples are drawn from the seed over
the images sorted by name: every configuration evaluated on the same split
gets the same resamples, so the difference of two configurations' metrics
resample by resample is a paired bootstrap (see findings.py).
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from campaign.core.io import atomic_write_bytes

METRICS = ("precision", "recall", "mAP50", "mAP50-95")


@dataclass(frozen=True)
class ImageMatches:
    """Per-image validation matches of one model on one split, images sorted by name.

    Predictions and targets are stored flat, grouped by image in the order of
    `images`; `pred_image` and `target_image` give each one's image index.
    """

    images: np.ndarray  # (N,) str
    tp: np.ndarray  # (P, 10) bool: a true positive at IoU 0.50, 0.55, ... 0.95
    conf: np.ndarray  # (P,) float
    pred_cls: np.ndarray  # (P,) int
    pred_image: np.ndarray  # (P,) int
    target_cls: np.ndarray  # (T,) int
    target_image: np.ndarray  # (T,) int

    @classmethod
    def from_records(cls, records: list[dict[str, Any]]) -> ImageMatches:
        """From one record per image: image, tp, conf, pred_cls, target_cls (Ultralytics' per-image stats)."""
        repeated = sorted(name for name, count in Counter(record["image"] for record in records).items() if count > 1)
        if repeated:
            raise ValueError(f"images validated twice: {repeated[:5]}; image names must be unique within a split")
        records = sorted(records, key=lambda record: record["image"])

        def stacked(key: str, dtype, shape=(0,)) -> np.ndarray:
            parts = [np.asarray(record[key], dtype=dtype).reshape((-1, *shape[1:])) for record in records]
            return np.concatenate(parts) if parts else np.zeros(shape, dtype)

        def owners(key: str) -> np.ndarray:
            counts = [len(record[key]) for record in records]
            return np.repeat(np.arange(len(records)), counts).astype(np.int32)

        return cls(
            images=np.array([record["image"] for record in records], dtype=str),
            tp=stacked("tp", bool, (0, 10)),
            conf=stacked("conf", np.float32),
            pred_cls=stacked("pred_cls", np.int32),
            pred_image=owners("conf"),
            target_cls=stacked("target_cls", np.int32),
            target_image=owners("target_cls"),
        )

    def save(self, path: str | Path) -> None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{name: getattr(self, name) for name in self.__dataclass_fields__})
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> ImageMatches:
        with np.load(path) as stored:
            return cls(**{name: stored[name] for name in cls.__dataclass_fields__})

    def images_hash(self) -> str:
        """Which images these are: resamples are paired only between equal image lists."""
        return hashlib.sha256("\n".join(self.images).encode()).hexdigest()[:16]

    def select(self, image_indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """tp, conf, pred_cls and target_cls of these images, an image drawn twice counting twice."""
        predictions = _rows_of(self.pred_image, len(self.images), image_indices)
        targets = _rows_of(self.target_image, len(self.images), image_indices)
        return self.tp[predictions], self.conf[predictions], self.pred_cls[predictions], self.target_cls[targets]

    def metrics(self, image_indices: np.ndarray | None = None) -> np.ndarray:
        """P, R, mAP50 and mAP50-95 of these images (all images when None)."""
        if image_indices is None:
            return detection_metrics(self.tp, self.conf, self.pred_cls, self.target_cls)
        return detection_metrics(*self.select(image_indices))


def _rows_of(owner: np.ndarray, images: int, image_indices: np.ndarray) -> np.ndarray:
    """Indices of the rows (grouped by image) that belong to each chosen image, in order."""
    counts = np.bincount(owner, minlength=images)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    chosen_counts = counts[image_indices]
    total = int(chosen_counts.sum())
    # Row k of the result is start(image) + its position within that image's block.
    block_starts = np.repeat(starts[image_indices], chosen_counts)
    positions = np.arange(total) - np.repeat(np.cumsum(chosen_counts) - chosen_counts, chosen_counts)
    return block_starts + positions


def detection_metrics(tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, target_cls: np.ndarray) -> np.ndarray:
    """P, R, mAP50 and mAP50-95 as Ultralytics' validator computes them (`DetMetrics.process`)."""
    from ultralytics.utils.metrics import ap_per_class

    if len(target_cls) == 0:
        return np.zeros(len(METRICS))
    _, _, precision, recall, _, ap, *_ = ap_per_class(tp, conf, pred_cls, target_cls)
    return np.array([precision.mean(), recall.mean(), ap[:, 0].mean(), ap.mean()])


def resample_indices(images: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, images) image indices drawn with replacement; the same for every model on the same split."""
    return np.random.default_rng(seed).integers(0, images, size=(resamples, images))


def bootstrap_metrics(matches: ImageMatches, resamples: int, seed: int) -> np.ndarray:
    """(resamples, 4) metrics, one row per resample of the images."""
    draws = resample_indices(len(matches.images), resamples, seed)
    return np.array([matches.metrics(draw) for draw in draws]).reshape(resamples, len(METRICS))


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central `level` share of the values (the percentile bootstrap interval)."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def save_bootstrap(path: str | Path, resampled: np.ndarray, images_hash: str, seed: int) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, resampled=resampled, images_hash=images_hash, seed=seed, metrics=np.array(METRICS))
    atomic_write_bytes(path, buffer.getvalue())


def load_bootstrap(path: str | Path) -> tuple[np.ndarray, str]:
    """The (resamples, 4) metrics of each resample and the hash of the images they resampled."""
    with np.load(path) as stored:
        return stored["resampled"], str(stored["images_hash"])


def interval_summary(point: np.ndarray, resampled: np.ndarray, level: float) -> dict[str, Any]:
    """Point estimate and interval of each metric, for metrics files and tables."""
    summary: dict[str, Any] = {"level": level, "resamples": len(resampled)}
    for index, metric in enumerate(METRICS):
        low, high = percentile_interval(resampled[:, index], level)
        summary[metric] = {"value": float(point[index]), "low": low, "high": high}
    return summary
