"""A copy of the cleaned dataset at one training image size.

Ultralytics decodes every image at full size whenever it loads it (four per
mosaic, every epoch) and only then shrinks it to the training size: with
12-megapixel phone photos trained at 320 px, data loading, not the GPU, sets
the pace. The copy holds each image already shrunk so that its longest side
is the image size, computed as Ultralytics' loader computes it (OpenCV,
bilinear, the same rounding) and stored losslessly (PNG), so that the loader
has nothing left to resize and the model sees exactly the pixels it would
have seen. The predictor shrinks full-size photos the same way, so training
on the copy changes nothing about what a deployed model is fed. Labels are
normalised and stay as they are. Images no larger than the size are
hard-linked, not copied.
"""

from __future__ import annotations

import math
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from campaign.core.io import atomic_write_text

SPLITS = ("train", "val", "test")


def resized_shape(width: int, height: int, imgsz: int) -> tuple[int, int] | None:
    """(width, height) with the longest side `imgsz`, rounded as Ultralytics' loader rounds; None if no larger."""
    ratio = imgsz / max(width, height)
    if ratio >= 1:
        return None
    return min(math.ceil(width * ratio), imgsz), min(math.ceil(height * ratio), imgsz)


def shrink_image(source: Path, folder: Path, imgsz: int) -> tuple[str, bool]:
    """Write `source` into `folder` at `imgsz`, or hard-link it there if no larger: (name written, shrunk).

    Read as Ultralytics reads it (colour, 8 bits: alpha dropped, palette and
    grey expanded, EXIF orientation applied); a shrunk image is a PNG of the
    same stem (label files are found by stem).
    """
    import cv2
    import numpy as np

    pixels = cv2.imdecode(np.fromfile(source, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError(f"{source}: OpenCV cannot decode this image")
    height, width = pixels.shape[:2]
    shape = resized_shape(width, height, imgsz)
    if shape is None:
        _link(source, folder / source.name)
        return source.name, False
    encoded, data = cv2.imencode(".png", cv2.resize(pixels, shape, interpolation=cv2.INTER_LINEAR))
    if not encoded:
        raise ValueError(f"{source}: OpenCV cannot write it as PNG")
    name = f"{source.stem}.png"
    partial = folder / f".{name}.partial"
    data.tofile(partial)
    os.replace(partial, folder / name)
    return name, True


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(source, target)


@dataclass
class CopyResult:
    images: int = 0
    shrunk: int = 0
    bytes_before: int = 0
    bytes_after: int = 0

    def line(self, imgsz: int) -> str:
        return (
            f"{self.images} images at {imgsz} px: {self.shrunk} shrunk, {self.images - self.shrunk} linked as they "
            f"were; {self.bytes_before / 1e6:.1f} MB -> {self.bytes_after / 1e6:.1f} MB"
        )


def write_resized_copy(dataset_yaml: Path, out: Path, imgsz: int, workers: int = 1) -> CopyResult:
    """The dataset of `dataset_yaml` (its split lists, images and labels) under `out`, shrunk to `imgsz`.

    `out` gets the same layout (images/, labels/, the split lists, dataset.yaml);
    the lists name the shrunk images by their new names.
    """
    source_root = dataset_yaml.parent
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    images = sorted(
        {line.strip() for split in SPLITS for line in split_lines(source_root / f"{split}.txt") if line.strip()}
    )
    for label in sorted((source_root / "labels").glob("*.txt")):
        _link(label, out / "labels" / label.name)

    def copy(listed: str) -> tuple[str, bool]:
        folder, _, _ = listed.rpartition("/")  # "./images/a.jpg": the prefix stays as Ultralytics reads it
        name, shrunk = shrink_image(source_root / listed, out / folder, imgsz)
        return f"{folder}/{name}", shrunk

    with ThreadPoolExecutor(max(1, workers)) as pool:  # OpenCV decodes, resizes and encodes without the GIL
        copied = dict(zip(images, pool.map(copy, images)))
    renamed = {listed: name for listed, (name, _) in copied.items()}
    result = CopyResult(images=len(images), shrunk=sum(shrunk for _, shrunk in copied.values()))
    result.bytes_before = sum((source_root / name).stat().st_size for name in images)
    result.bytes_after = sum((out / name).stat().st_size for name in renamed.values())
    for split in SPLITS:
        lines = split_lines(source_root / f"{split}.txt")
        atomic_write_text(out / f"{split}.txt", "".join(f"{renamed.get(line.strip(), line)}\n" for line in lines))
    # Last: the file jobs name as their input appears once the copy is whole.
    atomic_write_text(out / "dataset.yaml", dataset_yaml.read_text())
    return result


def split_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def split_images(dataset_yaml: Path, split: str) -> list[Path]:
    """The image files of one split of a dataset written by this workflow (lists relative to dataset.yaml)."""
    root = dataset_yaml.parent
    listed = yaml.safe_load(dataset_yaml.read_text())[split]
    return [root / line.strip() for line in split_lines(root / listed) if line.strip()]
