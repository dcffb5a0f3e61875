"""Peak memory of the detect step on 1080p video: bounded whatever the video's length.

Writes synthetic 1920x1080 videos at 30 fps (shapes moving over a textured
background) of each --seconds length, then runs the detect rule's own
function (`campaign.video.annotate_video`: predict, draw, stream the mp4,
sample the contact sheet) in a fresh process per video, with a yolov8n built
from its YAML at 320 px on the CPU, and reports that process's peak RSS.
Kept in memory, every annotated 1080p frame would cost 6.2 MB (a minute at
30 fps: 11 GB); streamed, the peak must not grow with the length.

Run: `.venv/bin/python benchmarks/detect_memory.py` (about 10 minutes on 2
cores for 30 s and 120 s). Prints a table and writes results/benchmarks/detect_memory.csv.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import ROOT, report, scratch_folder

WIDTH, HEIGHT, FPS = 1920, 1080, 30


def write_video(path: Path, seconds: int) -> int:
    """A 1080p video of moving rectangles and circles; returns its frame count."""
    import cv2

    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(60, 200, (HEIGHT, WIDTH, 3), dtype=np.uint8), (31, 31), 0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    frames = seconds * FPS
    try:
        for index in range(frames):
            frame = background.copy()
            phase = 2 * np.pi * index / (FPS * 8)
            for k in range(4):
                x = int(WIDTH / 2 + (WIDTH / 3) * np.cos(phase + k * 1.6))
                y = int(HEIGHT / 2 + (HEIGHT / 3) * np.sin(phase * 1.3 + k))
                color = (40 + 50 * k, 200 - 40 * k, 120)
                if k % 2:
                    cv2.circle(frame, (x, y), 90, color, -1)
                else:
                    cv2.rectangle(frame, (x - 120, y - 70), (x + 120, y + 70), color, -1)
            writer.write(frame)
    finally:
        writer.release()
    return frames


MEASURE = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from campaign.video import annotate_video, contact_sheet
started = time.perf_counter()
count, picks = annotate_video(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), 320, "cpu", 0.25)
contact_sheet(picks).save(Path(sys.argv[4]).with_suffix(".png"))
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("MEASURED " + json.dumps({"frames": count, "seconds": seconds, "peak_rss_mb": peak}))
"""


def measure(weights: Path, video: Path, out: Path) -> dict:
    command = [sys.executable, "-c", MEASURE, str(ROOT / "scripts"), str(weights), str(video), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("MEASURED "))
    return json.loads(line.removeprefix("MEASURED "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, nargs="+", default=[30, 120])
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "scripts"))
    from campaign.yolo_env import prepare_ultralytics

    rows = []
    with scratch_folder() as scratch:
        scratch = Path(scratch)
        prepare_ultralytics(scratch / "ultralytics", tensorboard=False)
        from ultralytics import YOLO

        weights = scratch / "yolov8n.pt"
        YOLO("yolov8n.yaml").save(str(weights))
        for seconds in args.seconds:
            video = scratch / f"drive_{seconds}s.mp4"
            started = time.perf_counter()
            frames = write_video(video, seconds)
            written = time.perf_counter() - started
            measured = measure(weights, video, scratch / f"annotated_{seconds}s.mp4")
            if measured["frames"] != frames:
                raise RuntimeError(f"{video}: {frames} frames written, {measured['frames']} annotated")
            rows.append(
                {
                    "video": f"1920x1080, {seconds} s at {FPS} fps",
                    "frames": frames,
                    "peak_rss_mb": round(measured["peak_rss_mb"]),
                    "frames_in_memory_would_be_mb": round(frames * WIDTH * HEIGHT * 3 / 2**20),
                    "detect_s": round(measured["seconds"], 1),
                    "writing_video_s": round(written, 1),
                }
            )
    report(
        "detect_memory",
        rows,
        ["peak RSS of a fresh process running annotate_video + contact_sheet (yolov8n from YAML, 320 px, CPU)"],
    )


if __name__ == "__main__":
    main()
