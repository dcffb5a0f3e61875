"""Cleaning speed against Ultralytics' own label-cache scan of the same images.

coco128 (train2017 + val2017, 256 images) is repeated to 2,560 images: each
copy gets a JPEG comment of its own, so that no copy is a byte-identical
duplicate (which the cleaning would drop) and every image is decoded by both
sides. The copies are laid out as ten groups, flat image + label pairs with
classes.txt. Both sides then scan them:

- cleaning: `clean_upload` with both cores (full decode, EXIF, perceptual
  hash, label parsing and writing the cleaned dataset);
- Ultralytics: building a `YOLODataset` on the same images, whose label-cache
  scan verifies every image and label with a thread pool;
- for scale, the file system's share: copying the same images and labels into
  fresh folders, serially, with nothing else (the cleaning must write them).

Run: `.venv/bin/python benchmarks/cleaning.py` (about two minutes on 2 cores).
Each side runs `--rounds` times, alternating, on fresh output folders.
Prints a table and writes results/benchmarks/cleaning.csv.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from common import ROOT, median, report, scratch_folder


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same JPEG with a COM segment after SOI: different bytes, same pixels."""
    payload = text.encode()
    segment = b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload
    return jpeg[:2] + segment + jpeg[2:]


def build(coco: Path, raw: Path, copies: int) -> tuple[int, list[str]]:
    import yaml

    names = yaml.safe_load((coco / "data.yaml").read_text())["names"]
    names = [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)
    images = sorted((coco / "images").rglob("*.jpg"))
    count = 0
    for copy in range(copies):
        group = raw / f"group{copy:02d}"
        group.mkdir(parents=True)
        (group / "classes.txt").write_text("\n".join(names) + "\n")
        for image in images:
            target = group / f"{image.parent.name}_{image.stem}.jpg"
            target.write_bytes(with_comment(image.read_bytes(), f"copy {copy}"))
            label = coco / "labels" / image.parent.name / f"{image.stem}.txt"
            if label.is_file():
                shutil.copyfile(label, target.with_suffix(".txt"))
            count += 1
    return count, names


def time_cleaning(raw: Path, out: Path, names: list[str], workers: int) -> float:
    from campaign.dataset.cleaning import clean_upload

    started = time.perf_counter()
    result = clean_upload(raw, out, names, {}, workers=workers)
    elapsed = time.perf_counter() - started
    assert len(result.manifest) > 0
    return elapsed


def time_copying(raw: Path, out: Path) -> float:
    """The file system's share: copying every image and label into fresh folders, nothing else."""
    started = time.perf_counter()
    for folder in ("images", "labels"):
        (out / folder).mkdir(parents=True)
    for index, image in enumerate(sorted(raw.rglob("*.jpg"))):
        shutil.copyfile(image, out / "images" / f"{index}.jpg")
        label = image.with_suffix(".txt")
        (out / "labels" / f"{index}.txt").write_bytes(label.read_bytes() if label.is_file() else b"")
    return time.perf_counter() - started


def time_ultralytics(raw: Path, names: list[str], settings: Path, layout: Path) -> float:
    from campaign.core.yolo_env import prepare_ultralytics

    prepare_ultralytics(settings, tensorboard=False)
    from ultralytics.data.dataset import YOLODataset

    # Ultralytics looks for labels under a sibling `labels` folder of
    # `images`; a fresh layout each round, so that no round reads a cache.
    (layout / "images").mkdir(parents=True)
    (layout / "labels").mkdir(parents=True)
    for image in raw.rglob("*.jpg"):
        name = f"{image.parent.name}_{image.name}"
        os.link(image, layout / "images" / name)
        if image.with_suffix(".txt").is_file():
            os.link(image.with_suffix(".txt"), (layout / "labels" / name).with_suffix(".txt"))
    started = time.perf_counter()
    dataset = YOLODataset(
        img_path=str(layout / "images"), data={"names": dict(enumerate(names)), "channels": 3}, augment=False
    )
    elapsed = time.perf_counter() - started
    assert len(dataset.labels) > 0
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coco", type=Path, default=ROOT.parent / "shared" / "datasets" / "coco128")
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--scratch", type=Path, default=None, help="where to build and clean (default: results/benchmarks)"
    )
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds; the median is reported")
    parser.add_argument("--quick", action="store_true", help="one copy, one round (a check, not a figure)")
    args = parser.parse_args()
    if args.quick:
        args.copies, args.rounds = 1, 1
    if not (args.coco / "data.yaml").is_file():
        parser.error(
            f"coco128 not found at {args.coco}: give its folder with --coco "
            "(a clone beside the project's shared/ folder finds it as ../shared/datasets/coco128)"
        )

    timings: dict[str, list[float]] = {
        "clean_upload": [],
        "ultralytics label cache scan": [],
        "copying the same files only": [],
    }
    with scratch_folder(args.scratch) as scratch:
        scratch = Path(scratch)
        images, names = build(args.coco, scratch / "raw", args.copies)
        for round_ in range(args.rounds):
            timings["clean_upload"].append(
                time_cleaning(scratch / "raw", scratch / f"clean{round_}", names, args.workers)
            )
            timings["ultralytics label cache scan"].append(
                time_ultralytics(scratch / "raw", names, scratch / "settings", scratch / f"ultralytics{round_}")
            )
            timings["copying the same files only"].append(time_copying(scratch / "raw", scratch / f"copy{round_}"))

    rows = [
        {
            "task": task,
            "images": images,
            "median_s": round(median(seconds), 2),
            "min_s": round(min(seconds), 2),
            "max_s": round(max(seconds), 2),
            "images_per_s": round(images / median(seconds)),
        }
        for task, seconds in timings.items()
    ]
    ratio = median(timings["clean_upload"]) / median(timings["ultralytics label cache scan"])
    report("cleaning", rows, [f"ratio of medians, cleaning / ultralytics: {ratio:.2f}x (goal: at most 3x)"])


if __name__ == "__main__":
    main()
