"""Train the test campaign's starting checkpoint: yolov8n that already detects the demo's objects.

The tests' own campaign trains for a single epoch, which teaches a network
from scratch nothing (every metric would be 0.0, and an evaluation on the
wrong split, size or weights would pass unnoticed). Starting it from this
checkpoint, as the real campaign starts from COCO weights, makes every
precision, recall and mAP a figure a broken evaluation would change.

Trained from scratch on the campaign's own training split at 96 px (at 64 px
the demo's objects are too small to learn in CI time), without validation.

Usage: python tests/learned_checkpoint.py DATASET_YAML OUT_DIR
Writes OUT_DIR/yolov8n-demo.pt and OUT_DIR/SHA256SUMS.
"""

import hashlib
import os
import shutil
import sys
from pathlib import Path

IMGSZ = 96
EPOCHS = 20


def main(dataset_yaml: str, out_dir: str) -> None:
    out = Path(out_dir).resolve()
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_CONFIG_DIR"] = str(out / "ultralytics-settings")
    from ultralytics import YOLO

    model = YOLO("yolov8n.yaml")
    model.train(
        data=dataset_yaml,
        imgsz=IMGSZ,
        epochs=EPOCHS,
        batch=16,
        workers=0,
        device="cpu",
        seed=0,
        deterministic=True,
        val=False,
        plots=False,
        project=str(out),
        name="run",
        exist_ok=True,
        verbose=False,
    )
    checkpoint = out / "yolov8n-demo.pt"
    shutil.copyfile(out / "run" / "weights" / "last.pt", checkpoint)
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    (out / "SHA256SUMS").write_text(f"{digest}  {checkpoint.name}\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
