"""Qualitative detection: annotated videos and contact sheets of sampled frames.

Also writes the demo's short video (demo/videos/table.mp4): objects of the
demo classes gliding over a table, drawn by the same code as the demo images.
Regenerate it with `write_demo_video(Path("demo/videos/table.mp4"))`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .synthetic import DEMO_OBJECTS, _background


def write_demo_video(path: Path, frames: int = 48, size: int = 128, fps: int = 12, seed: int = 7) -> None:
    """Three objects gliding across a fixed table; deterministic for a seed."""
    import cv2

    rng = np.random.default_rng(seed)
    table = _background(rng, size, size)
    tracks = []
    for index, name in enumerate(sorted(DEMO_OBJECTS)):
        painter, (low, high) = DEMO_OBJECTS[name]
        extent = (low + high) / 2 * size
        tracks.append((painter, extent, 0.2 + 0.3 * index, rng.uniform(0, 2 * math.pi), int(rng.integers(1 << 30))))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    try:
        for frame in range(frames):
            image = table.copy()
            draw = ImageDraw.Draw(image)
            for painter, extent, height, phase, painter_seed in tracks:
                angle = phase + 2 * math.pi * frame / frames
                cx = size / 2 + (size / 2 - extent) * 0.8 * math.cos(angle)
                cy = height * size + 6 * math.sin(2 * angle)
                painter(draw, np.random.default_rng(painter_seed), cx, cy, extent)
            writer.write(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def annotate_video(weights: Path, source: Path, out_video: Path, imgsz: int, device: str, conf: float) -> list:
    """Run the model on every frame; write the annotated mp4; return the annotated frames (RGB)."""
    import cv2
    from ultralytics import YOLO

    model = YOLO(str(weights))
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25
    capture.release()
    writer = None
    frames = []
    try:
        for result in model.predict(str(source), imgsz=imgsz, device=device, conf=conf, stream=True, verbose=False):
            plotted = result.plot(line_width=1)  # BGR with boxes and labels
            if writer is None:
                height, width = plotted.shape[:2]
                out_video.parent.mkdir(parents=True, exist_ok=True)
                writer = cv2.VideoWriter(str(out_video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
            writer.write(plotted)
            frames.append(cv2.cvtColor(plotted, cv2.COLOR_BGR2RGB))
    finally:
        if writer is not None:
            writer.release()
    if not frames:
        raise ValueError(f"{source}: no frame could be read")
    return frames


def contact_sheet(frames: list, count: int = 12, columns: int = 4) -> Image.Image:
    """Evenly sampled frames in a grid, each labelled with its frame number."""
    picks = sorted({round(i * (len(frames) - 1) / max(count - 1, 1)) for i in range(count)})
    height, width = frames[0].shape[:2]
    rows = math.ceil(len(picks) / columns)
    sheet = Image.new("RGB", (columns * width, rows * (height + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    for slot, index in enumerate(picks):
        x, y = (slot % columns) * width, (slot // columns) * (height + 14)
        sheet.paste(Image.fromarray(frames[index]), (x, y + 14))
        draw.text((x + 2, y + 1), f"frame {index}", fill="black")
    return sheet
