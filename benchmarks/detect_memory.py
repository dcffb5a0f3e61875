"""Peak memory of the detect step on 1080p video: bounded whatever the video's length.

Writes synthetic 1920x1080 videos at 30 fps (the demo's objects gliding over
a table, `synthetic.write_table_video`) of each --seconds length, then runs the detect rule's own
function (`campaign.evaluation.video.annotate_video`: predict, draw, stream the mp4,
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

from common import report, scratch_folder

WIDTH, HEIGHT, FPS = 1920, 1080, 30


MEASURE = """
import json, sys, time
from pathlib import Path
from campaign.evaluation.video import annotate_video, contact_sheet
started = time.perf_counter()
count, picks = annotate_video(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), 320, "cpu", 0.25)
contact_sheet(picks).save(Path(sys.argv[3]).with_suffix(".png"))
seconds = time.perf_counter() - started
# VmHWM, not ru_maxrss: a process's ru_maxrss counts its parent's memory at the fork that started it.
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
print("MEASURED " + json.dumps({"frames": count, "seconds": seconds, "peak_rss_mb": peak}))
"""


def measure(weights: Path, video: Path, out: Path) -> dict:
    command = [sys.executable, "-c", MEASURE, str(weights), str(video), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("MEASURED "))
    return json.loads(line.removeprefix("MEASURED "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, nargs="+", default=[30, 120])
    parser.add_argument("--quick", action="store_true", help="one 2 s video (a check, not a figure)")
    args = parser.parse_args()
    if args.quick:
        args.seconds = [2]

    from campaign.core.yolo_env import prepare_ultralytics
    from campaign.dataset.synthetic import write_table_video

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
            frames = seconds * FPS
            write_table_video(video, frames=frames, size=(WIDTH, HEIGHT), fps=FPS)
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
