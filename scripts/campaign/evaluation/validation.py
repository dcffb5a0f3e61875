"""Evaluate a trained model on one split with Ultralytics' own validator.

The numbers are those `yolo val` prints for the same weights, split and
arguments; they are written as data files for the summary to read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from campaign.core.io import atomic_write_csv, atomic_write_json

PER_CLASS_FIELDS = ["class_id", "class", "images", "instances", "precision", "recall", "mAP50", "mAP50-95"]


def evaluate(
    weights: Path,
    data: Path,
    split: str,
    imgsz: int,
    batch: int,
    device: str,
    out_dir: Path,
    plots: bool = True,
    conf: float = 0.001,
    iou: float = 0.7,
):
    """Ultralytics' validation; `conf` and `iou` are its confidence and NMS IoU thresholds.

    The returned metrics also carry `image_records`: each image's matches,
    for the bootstrap (bootstrap.py).
    """
    from ultralytics import YOLO

    model = YOLO(str(weights))
    return model.val(
        validator=recording_validator(),
        data=str(data.resolve()),
        split=split,
        imgsz=imgsz,
        batch=batch,
        conf=conf,
        iou=iou,
        device=device,
        project=str(out_dir.parent.resolve()),
        name=out_dir.name,
        exist_ok=True,
        plots=plots,
        verbose=False,
    )


def recording_validator():
    """Ultralytics' detection validator, keeping each image's statistics that it would otherwise discard.

    Its `update_metrics` appends one entry per image to the metrics' stats
    (tp, conf, pred_cls, target_cls) and then pools them; the entries added
    by each batch are copied out with the image's name before that happens.
    """
    from ultralytics.models.yolo.detect import DetectionValidator

    class RecordingValidator(DetectionValidator):
        def init_metrics(self, model):
            super().init_metrics(model)
            self.metrics.image_records = []

        def update_metrics(self, preds, batch):
            first = len(self.metrics.stats["tp"])
            super().update_metrics(preds, batch)
            for index, image in zip(range(first, len(self.metrics.stats["tp"])), batch["im_file"]):
                record = {key: self.metrics.stats[key][index] for key in ("tp", "conf", "pred_cls", "target_cls")}
                # By stem: a copy shrunk to the training size stores a photo as PNG (resizing.py).
                self.metrics.image_records.append({"image": Path(image).stem, **record})

    return RecordingValidator


def metrics_tables(metrics, names: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Overall metrics and one row per class (classes without instances get NaN AP)."""
    box = metrics.box
    overall = {
        "precision": float(box.mp),
        "recall": float(box.mr),
        "mAP50": float(box.map50),
        "mAP50-95": float(box.map),
        "speed_ms": {k: float(v) for k, v in metrics.speed.items()},
    }
    counts_images = getattr(metrics, "nt_per_image", None)
    counts_boxes = getattr(metrics, "nt_per_class", None)
    rows = []
    present = {int(c): i for i, c in enumerate(box.ap_class_index)}
    for class_id, name in enumerate(names):
        index = present.get(class_id)
        rows.append(
            {
                "class_id": class_id,
                "class": name,
                "images": int(counts_images[class_id]) if counts_images is not None else "",
                "instances": int(counts_boxes[class_id]) if counts_boxes is not None else "",
                "precision": float(box.p[index]) if index is not None else np.nan,
                "recall": float(box.r[index]) if index is not None else np.nan,
                "mAP50": float(box.ap50[index]) if index is not None else np.nan,
                "mAP50-95": float(box.ap[index]) if index is not None else np.nan,
            }
        )
    return overall, rows


def write_metrics(metrics, names: list[str], metrics_json: Path, per_class_csv: Path, extra: dict) -> dict:
    overall, rows = metrics_tables(metrics, names)
    overall.update(extra)
    atomic_write_csv(per_class_csv, rows, PER_CLASS_FIELDS)
    atomic_write_json(metrics_json, overall)
    return overall


STUDY_FIELDS = ["config", "split", "imgsz", "mAP50", "mAP50-95", "preprocess_ms", "inference_ms", "postprocess_ms"]


def image_size_study(
    weights: Path,
    data_by_size: dict[int, Path],
    split: str,
    batch: int,
    device: str,
    out_dir: Path,
    conf: float = 0.001,
    iou: float = 0.7,
) -> list[dict[str, Any]]:
    """Accuracy and latency of one model over image sizes (YOLOv5's `val.py --task study`).

    Each size reads its own dataset: a copy shrunk to the training size serves
    the sizes up to it, the full-size images the larger ones.
    """
    rows = []
    for size, data in data_by_size.items():
        metrics = evaluate(
            weights, data, split, size, batch, device, out_dir / f"img{size}", plots=False, conf=conf, iou=iou
        )
        rows.append(
            {
                "split": split,
                "imgsz": size,
                "mAP50": float(metrics.box.map50),
                "mAP50-95": float(metrics.box.map),
                "preprocess_ms": float(metrics.speed["preprocess"]),
                "inference_ms": float(metrics.speed["inference"]),
                "postprocess_ms": float(metrics.speed["postprocess"]),
            }
        )
    return rows
