"""Deterministic synthetic detection scenes.

The embedded demo and the pretraining source data are drawn here rather than
shipped as opaque binaries: every pixel and every box follows from a seed, so
the data can be regenerated, inspected and trusted to be labelled correctly.

A scene is a textured background with a few objects. Each object is drawn by a
small function that returns its tight bounding box in pixels; the box is what
the label says, so labels are exact by construction.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
Painter = Callable[[ImageDraw.ImageDraw, np.random.Generator, float, float, float], Box]


@dataclass(frozen=True)
class Annotation:
    """One object of a scene: a class name and its box in normalised xywh."""

    name: str
    xc: float
    yc: float
    w: float
    h: float


def _metal_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    gold = (212, 175, 55)
    silver = (192, 192, 200)
    base = gold if rng.random() < 0.5 else silver
    return tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in base)


def paint_ring(draw, rng, cx, cy, size) -> Box:
    """A band seen from above: an annulus in a metallic colour."""
    r = size / 2
    width = max(2, int(r * rng.uniform(0.22, 0.35)))
    box = (cx - r, cy - r, cx + r, cy + r)
    draw.ellipse(box, outline=_metal_colour(rng), width=width)
    return box


def paint_glasses(draw, rng, cx, cy, size) -> Box:
    """Two dark lens rims joined by a bridge, wider than tall."""
    lens = size * 0.42
    gap = size * 0.16
    colour = tuple(int(c) for c in rng.integers(0, 70, 3))
    width = max(2, int(lens * 0.12))
    left = (cx - gap / 2 - lens, cy - lens / 2, cx - gap / 2, cy + lens / 2)
    right = (cx + gap / 2, cy - lens / 2, cx + gap / 2 + lens, cy + lens / 2)
    draw.ellipse(left, outline=colour, width=width)
    draw.ellipse(right, outline=colour, width=width)
    draw.line((left[2] - 1, cy, right[0] + 1, cy), fill=colour, width=width)
    return (left[0], left[1], right[2], right[3])


def paint_lentil(draw, rng, cx, cy, size) -> Box:
    """A small filled ellipse in an orange-brown, tilted at random."""
    a = size / 2
    b = a * rng.uniform(0.55, 0.8)
    angle = rng.uniform(0, math.pi)
    colour = (
        int(rng.integers(150, 210)),
        int(rng.integers(70, 120)),
        int(rng.integers(20, 60)),
    )
    points = [
        (
            cx + a * math.cos(t) * math.cos(angle) - b * math.sin(t) * math.sin(angle),
            cy + a * math.cos(t) * math.sin(angle) + b * math.sin(t) * math.cos(angle),
        )
        for t in np.linspace(0, 2 * math.pi, 48, endpoint=False)
    ]
    draw.polygon(points, fill=colour)
    xs, ys = zip(*points)
    return (min(xs), min(ys), max(xs), max(ys))


def paint_square(draw, rng, cx, cy, size) -> Box:
    r = size / 2
    box = (cx - r, cy - r, cx + r, cy + r)
    draw.rectangle(box, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return box


def paint_triangle(draw, rng, cx, cy, size) -> Box:
    r = size / 2
    points = [(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)]
    draw.polygon(points, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return (cx - r, cy - r, cx + r, cy + r)


def paint_cross(draw, rng, cx, cy, size) -> Box:
    r = size / 2
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    width = max(2, int(size * 0.25))
    draw.line((cx - r, cy, cx + r, cy), fill=colour, width=width)
    draw.line((cx, cy - r, cx, cy + r), fill=colour, width=width)
    return (cx - r, cy - r, cx + r, cy + r)


# Everyday objects of the classroom demo, and the generic shapes that the
# pretraining source data is made of (a stand-in for a large public dataset).
DEMO_OBJECTS: dict[str, tuple[Painter, tuple[float, float]]] = {
    "ring": (paint_ring, (0.14, 0.30)),
    "glasses": (paint_glasses, (0.30, 0.55)),
    "lentils": (paint_lentil, (0.08, 0.16)),
}
SOURCE_OBJECTS: dict[str, tuple[Painter, tuple[float, float]]] = {
    "square": (paint_square, (0.12, 0.35)),
    "triangle": (paint_triangle, (0.12, 0.35)),
    "cross": (paint_cross, (0.12, 0.35)),
}


def table_background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A table-like surface: a colour gradient, a few large soft patches
    (shadows, a placemat, a book edge) and blurred noise.

    The patches give each scene a layout of its own, as real photos have, so
    that distinct scenes are also distinct to a perceptual hash.
    """
    base = rng.integers(60, 230, 3).astype(np.float32)
    tilt = rng.uniform(-40, 40, 3).astype(np.float32)
    ramp = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :, None]
    pixels = base + tilt * ramp + rng.normal(0, 14, (height, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    patches = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 5))):
        x0, y0 = rng.uniform(-0.3, 0.9) * width, rng.uniform(-0.3, 0.9) * height
        x1, y1 = x0 + rng.uniform(0.3, 0.8) * width, y0 + rng.uniform(0.3, 0.8) * height
        shade = tuple(int(c) for c in np.clip(base + rng.uniform(-70, 70, 3), 0, 255))
        patches.rectangle((x0, y0, x1, y1), fill=shade)
    return image.filter(ImageFilter.GaussianBlur(radius=2.0))


def _overlaps(box: Box, placed: list[Box], margin: float) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] + margin and b[0] < x1 + margin and y0 < b[3] + margin and b[1] < y1 + margin for b in placed)


def draw_scene(
    seed: int,
    objects: dict[str, tuple[Painter, tuple[float, float]]],
    size: tuple[int, int] = (160, 160),
    max_objects: int = 4,
) -> tuple[Image.Image, list[Annotation]]:
    """Draw one scene with 0..max_objects non-overlapping objects.

    About one scene in twelve is left empty on purpose: real uploads contain
    background images, and the trainer should see some.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    image = table_background(rng, width, height)
    draw = ImageDraw.Draw(image)
    names = sorted(objects)
    count = 0 if rng.random() < 1 / 12 else int(rng.integers(1, max_objects + 1))
    placed: list[Box] = []
    annotations: list[Annotation] = []
    for _ in range(count * 6):  # a few tries per object to find free space
        if len(annotations) == count:
            break
        name = names[int(rng.integers(len(names)))]
        painter, (low, high) = objects[name]
        extent = rng.uniform(low, high) * min(width, height)
        cx = rng.uniform(extent * 0.6, width - extent * 0.6)
        cy = rng.uniform(extent * 0.6, height - extent * 0.6)
        guess = (cx - extent / 2, cy - extent / 2, cx + extent / 2, cy + extent / 2)
        if _overlaps(guess, placed, margin=3):
            continue
        x0, y0, x1, y1 = painter(draw, rng, cx, cy, extent)
        x0, y0 = max(0.0, x0), max(0.0, y0)
        x1, y1 = min(float(width), x1), min(float(height), y1)
        placed.append((x0, y0, x1, y1))
        annotations.append(
            Annotation(
                name,
                (x0 + x1) / 2 / width,
                (y0 + y1) / 2 / height,
                (x1 - x0) / width,
                (y1 - y0) / height,
            )
        )
    return image, annotations


def write_yolo_dataset(
    root: Path,
    objects: dict[str, tuple[Painter, tuple[float, float]]],
    count: int,
    seed: int,
    size: tuple[int, int] = (128, 128),
    val_fraction: float = 0.2,
) -> Path:
    """Write a clean YOLO dataset of `count` scenes; return its dataset yaml."""
    names = sorted(objects)
    val_count = max(1, int(count * val_fraction))
    for index in range(count):
        split = "val" if index < val_count else "train"
        image, annotations = draw_scene(seed * 1_000_003 + index, objects, size=size)
        image_path = root / "images" / split / f"{index:05d}.jpg"
        label_path = root / "labels" / split / f"{index:05d}.txt"
        image_path.parent.mkdir(parents=True, exist_ok=True)
        label_path.parent.mkdir(parents=True, exist_ok=True)
        image.save(image_path, quality=90)
        label_path.write_text(
            "".join(f"{names.index(a.name)} {a.xc:.6f} {a.yc:.6f} {a.w:.6f} {a.h:.6f}\n" for a in annotations)
        )
    dataset = root / "dataset.yaml"
    dataset.write_text(
        "train: images/train\nval: images/val\nnames:\n" + "".join(f"  {i}: {name}\n" for i, name in enumerate(names))
    )
    return dataset


def write_table_video(
    path: Path, frames: int = 48, size: tuple[int, int] = (128, 128), fps: int = 12, seed: int = 7
) -> None:
    """Three objects gliding across a fixed table, `frames` frames of `size`; deterministic for a seed.

    The demo's video is the default; at (1920, 1080) and 30 fps it is the
    length of video a class films, for tests and benchmarks of the detect step.
    """
    import cv2

    width, height = size
    rng = np.random.default_rng(seed)
    table = table_background(rng, width, height)
    side = min(width, height)
    tracks = []
    for index, name in enumerate(sorted(DEMO_OBJECTS)):
        painter, (low, high) = DEMO_OBJECTS[name]
        extent = (low + high) / 2 * side
        tracks.append((painter, extent, 0.2 + 0.3 * index, rng.uniform(0, 2 * math.pi), int(rng.integers(1 << 30))))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    try:
        for frame in range(frames):
            image = table.copy()
            draw = ImageDraw.Draw(image)
            for painter, extent, row, phase, painter_seed in tracks:
                angle = phase + 2 * math.pi * frame / frames
                cx = width / 2 + (width / 2 - extent) * 0.8 * math.cos(angle)
                cy = row * height + 6 * height / 128 * math.sin(2 * angle)
                painter(draw, np.random.default_rng(painter_seed), cx, cy, extent)
            writer.write(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


# EXIF orientation of a phone held upright: the sensor's landscape pixels are
# stored as they are and the viewer turns them a quarter turn clockwise.
PORTRAIT = 6
# What the stored pixels are, seen upright, for each orientation a phone writes.
_STORED = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def phone_photo(
    seed: int, size: tuple[int, int] = (4032, 3024), orientation: int = 1, quality: int = 90
) -> tuple[bytes, list[Annotation]]:
    """A JPEG as a phone writes it (12 megapixels by default) and the labels of the scene as seen upright.

    With an EXIF orientation other than 1, the stored pixels are turned so
    that applying the orientation shows the labelled scene: a label file
    describes the upright photo, as annotation tools display it.
    """
    width, height = size
    upright_size = (height, width) if orientation in (6, 8) else (width, height)
    # Drawn at a quarter of the size and enlarged (soft edges, as out of a
    # phone's lens), then given sensor grain, which makes the file as large
    # and as slow to decode as a real photo's.
    scene, annotations = draw_scene(seed, DEMO_OBJECTS, size=(upright_size[0] // 4, upright_size[1] // 4))
    enlarged = np.asarray(scene.resize(upright_size, Image.Resampling.BICUBIC), dtype=np.int16)
    grain = np.random.default_rng(seed).integers(-12, 13, enlarged.shape, dtype=np.int16)
    image = Image.fromarray(np.clip(enlarged + grain, 0, 255).astype(np.uint8))
    stored = image.transpose(_STORED[orientation]) if _STORED[orientation] is not None else image
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Synthetic"  # Make
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=quality, exif=exif.tobytes())
    return buffer.getvalue(), annotations
