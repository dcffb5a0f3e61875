"""Qualitative detection: annotated videos and contact sheets of sampled frames.

Also writes the demo's short video (demo/videos/table.mp4): objects of the
demo classes gliding over a table, drawn by the same code as the demo images.
Regenerate it with `synthetic.write_table_video(Path("demo/videos/table.mp4"))`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from campaign.core.configurations import ConfigError

# What OpenCV reads as video; other files of a folder are taken as its frames.
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def expand_sources(sources: list[str]) -> list[tuple[int, str]]:
    """Each configured source as the sources it gives, with its index in detect.sources.

    A folder of videos gives each video in it (copy one in and rerun: its
    detections are made); a folder of images is one source, its frames in
    name order; a folder with neither (the class has not filmed yet) gives
    none. A file is itself. A file that is neither a video nor an image, and
    a folder whose files are neither, are a ConfigError naming the source.
    """
    expanded = []
    media = ", ".join(sorted(VIDEO_SUFFIXES | IMAGE_SUFFIXES))
    for index, source in enumerate(sources):
        path = Path(source)
        if not path.is_dir():
            if path.is_file() and path.suffix.lower() not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
                raise ConfigError(
                    f"detect.sources[{index}]: {source!r} is neither a video nor an image ({media}); "
                    "give a video file, a folder of videos or a folder of images"
                )
            expanded.append((index, source))
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
        if videos:
            expanded += [(index, str(video)) for video in videos]
        elif any(p.suffix.lower() in IMAGE_SUFFIXES for p in files):
            expanded.append((index, source))
        elif files:
            raise ConfigError(
                f"detect.sources[{index}]: folder {source!r} holds {len(files)} file(s) but no video or image "
                f"({media}); put the videos or frames there, or remove the source"
            )
    return expanded


def detect_source_names(sources: list[str]) -> dict[str, str]:
    """Each detection source by the name its outputs take (the file or folder name without extension).

    Folders of videos give one source per video (expand_sources). Two sources
    with one name would write the same outputs: an error naming both.
    """
    names: dict[str, str] = {}
    for index, source in expand_sources(sources):
        name = Path(source).stem
        if name in names:
            raise ConfigError(
                f"detect.sources[{index}]: {source!r} and {names[name]!r} would both write results/detect/<config>/"
                f"{name}.mp4; rename one of the files"
            )
        names[name] = source
    return names


class FrameSampler:
    """Evenly spaced frames of a stream of unknown length, in bounded memory.

    Keeps every `stride`-th frame; when twice `count` are kept, the stride
    doubles and every other kept frame goes. At most 2 x `count` frames are
    held, whatever the video's length (a minute of 1080p is 1,800 frames of
    6 MB each), and the frame count reported by a container is never needed.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.stride = 1
        self.kept: list[tuple[int, np.ndarray]] = []
        self.last: tuple[int, np.ndarray] | None = None
        self.seen = 0

    def add(self, frame: np.ndarray) -> None:
        index = self.seen
        self.seen += 1
        self.last = (index, frame)
        if index % self.stride:
            return
        self.kept.append((index, frame))
        if len(self.kept) >= 2 * self.count:
            self.stride *= 2
            self.kept = [(i, f) for i, f in self.kept if i % self.stride == 0]

    def picks(self) -> list[tuple[int, np.ndarray]]:
        """`count` frames (fewer for a short stream): for each of `count` evenly spaced positions from the
        first frame to the last, the kept frame nearest to it (less than one stride away)."""
        frames = list(self.kept)
        if self.last is not None and frames[-1][0] != self.last[0]:
            frames.append(self.last)
        if len(frames) <= self.count:
            return frames
        last = frames[-1][0]
        chosen: dict[int, np.ndarray] = {}
        for slot in range(self.count):
            target = slot * last / (self.count - 1)
            index, frame = min(frames, key=lambda pair: abs(pair[0] - target))
            chosen[index] = frame
        return sorted(chosen.items(), key=lambda pair: pair[0])


def annotate_video(
    weights: Path, source: Path, out_video: Path, imgsz: int, device: str, conf: float, sheet_frames: int = 12
) -> tuple[int, list[tuple[int, np.ndarray]]]:
    """Run the model on every frame and stream the annotated mp4 to disk.

    Returns the number of frames and the (index, RGB frame) pairs the
    contact sheet shows; no other frame stays in memory.
    """
    import cv2
    from ultralytics import YOLO

    model = YOLO(str(weights))
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25
    capture.release()
    writer = None
    sampler = FrameSampler(sheet_frames)
    try:
        for result in model.predict(str(source), imgsz=imgsz, device=device, conf=conf, stream=True, verbose=False):
            plotted = result.plot(line_width=1)  # BGR with boxes and labels
            if writer is None:
                height, width = plotted.shape[:2]
                out_video.parent.mkdir(parents=True, exist_ok=True)
                writer = cv2.VideoWriter(str(out_video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
            writer.write(plotted)
            sampler.add(plotted)
    finally:
        if writer is not None:
            writer.release()
    if not sampler.seen:
        raise ValueError(f"{source}: no frame could be read")
    return sampler.seen, [(index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)) for index, frame in sampler.picks()]


def contact_sheet(frames: list[tuple[int, np.ndarray]], columns: int = 4) -> Image.Image:
    """The (index, RGB frame) pairs in a grid, each labelled with its frame number."""
    height, width = frames[0][1].shape[:2]
    rows = math.ceil(len(frames) / columns)
    sheet = Image.new("RGB", (columns * width, rows * (height + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    for slot, (index, frame) in enumerate(frames):
        x, y = (slot % columns) * width, (slot // columns) * (height + 14)
        sheet.paste(Image.fromarray(frame), (x, y + 14))
        draw.text((x + 2, y + 1), f"frame {index}", fill="black")
    return sheet
