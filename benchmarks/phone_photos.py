"""Phone photos: cleaning them, copying them at 320 px, and feeding training from the copy.

Writes `--photos` synthetic 12-megapixel JPEGs (4032x3024, about 3 MB each,
a quarter of them EXIF-rotated portraits) with labels as one group's upload,
then measures on the machine's cores:

- cleaning (`clean_upload`, one worker process per core) in a fresh
  process: images per second, and the peak RSS of the main process
  (VmHWM) and of the largest worker (which counts what it shares with the
  main process), for the whole upload and for half of it (bounded per
  worker: the peak must not grow with the number of photos);
- cleaning one image at the pixel limit (`dataset.max_pixels`, 120
  megapixels by default) as a JPEG and as a PNG (which cannot be decoded at
  a reduced scale), in one process: its peak RSS (VmHWM), the most one
  cleaning worker needs for an image it accepts;
- the resized copy at 320 px (`write_resized_copy`): images per second;
- Ultralytics' training dataloader (`build_yolo_dataset` + `build_dataloader`,
  mosaic and every augmentation of a training, batch 16, one worker per
  core) at 320 px on the full-size photos and on the copy: images per second
  over `--batches` batches after two warm-up batches. The goal is 10x.

The trainer keeps the last `batch x 8` images it loaded in each worker (a
mosaic takes three of its four images from them, so each training image
costs about one decode), and on a dataset as small as the generated one it
would stop decoding after the first epoch; the split list names each photo
`--repeat` times to give the dataloader a dataset of a class's size (640
images by default), for which most images are decoded again at every epoch.

Run: `.venv/bin/python benchmarks/phone_photos.py` (about 5 minutes on 2
cores). Prints a table and writes results/benchmarks/phone_photos.csv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import report, scratch_folder

CLASSES = ["glasses", "lentils", "ring"]

CLEAN = """
import json, resource, sys, time
from pathlib import Path
from campaign.dataset.cleaning import clean_upload
started = time.perf_counter()
result = clean_upload(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[4].split(","), {}, workers=int(sys.argv[3]))
seconds = time.perf_counter() - started
# VmHWM, not ru_maxrss: a process's ru_maxrss counts its parent's memory at the fork that started it.
with open("/proc/self/status") as status:
    main_peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
print("MEASURED " + json.dumps({
    "images": len(result.manifest),
    "seconds": seconds,
    "main_peak_mb": main_peak,
    "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def write_upload(raw: Path, count: int) -> int:
    """`count` phone photos with labels in one group folder; returns the bytes written."""
    from campaign.dataset.synthetic import PORTRAIT, phone_photo

    group = raw / "phones"
    group.mkdir(parents=True)
    (group / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    written = 0
    for index in range(count):
        data, annotations = phone_photo(seed=index, orientation=PORTRAIT if index % 4 == 3 else 1)
        (group / f"IMG_{index:04d}.JPG").write_bytes(data)
        (group / f"IMG_{index:04d}.txt").write_text(
            "".join(f"{CLASSES.index(a.name)} {a.xc:.6f} {a.yc:.6f} {a.w:.6f} {a.h:.6f}\n" for a in annotations)
        )
        written += len(data)
    return written


def write_largest(raw: Path, fmt: str) -> tuple[int, int]:
    """One photo at the schema's pixel limit, with a label, as one group's upload; its size."""
    from PIL import Image

    from campaign.core.configurations import section_defaults
    from campaign.dataset.synthetic import DEMO_OBJECTS, draw_scene

    limit = section_defaults("dataset")["max_pixels"]
    width = int((limit * 4 / 3) ** 0.5) // 4 * 4
    height = limit // width // 4 * 4
    scene, annotations = draw_scene(1, DEMO_OBJECTS, size=(width // 8, height // 8))
    group = raw / "large"
    group.mkdir(parents=True)
    (group / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    scene.resize((width, height), Image.Resampling.BILINEAR).save(group / f"large.{fmt}", quality=90)
    (group / "large.txt").write_text(
        "".join(f"{CLASSES.index(a.name)} {a.xc:.6f} {a.yc:.6f} {a.w:.6f} {a.h:.6f}\n" for a in annotations)
    )
    return width, height


def clean(raw: Path, out: Path, workers: int) -> dict:
    command = [sys.executable, "-c", CLEAN, str(raw), str(out), str(workers), ",".join(CLASSES)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("MEASURED "))
    return json.loads(line.removeprefix("MEASURED "))


def write_dataset_yaml(root: Path, repeat: int) -> Path:
    """A dataset.yaml over the cleaned images, its train list naming each `repeat` times."""
    names = sorted(f"./images/{path.name}" for path in (root / "images").iterdir())
    (root / "train.txt").write_text("".join(f"{name}\n" for name in names * repeat))
    for split in ("val", "test"):
        (root / f"{split}.txt").write_text(f"{names[0]}\n")
    dataset = root / "dataset.yaml"
    dataset.write_text(
        "train: train.txt\nval: val.txt\ntest: test.txt\nnames:\n"
        + "".join(f"  {index}: {name}\n" for index, name in enumerate(CLASSES))
    )
    return dataset


def dataloader_rate(dataset_yaml: Path, imgsz: int, batch: int, workers: int, batches: int) -> float:
    """Images per second of Ultralytics' training dataloader, after two warm-up batches."""
    import yaml
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_dataloader, build_yolo_dataset

    data = {**yaml.safe_load(dataset_yaml.read_text()), "channels": 3, "nc": len(CLASSES)}
    cfg = get_cfg(overrides={"imgsz": imgsz, "batch": batch, "workers": workers})
    dataset = build_yolo_dataset(cfg, str(dataset_yaml.parent / "train.txt"), batch, data, mode="train")
    loader = build_dataloader(dataset, batch, workers, shuffle=True)

    def endless():
        while True:  # epoch after epoch, as training goes on
            yield from loader

    stream = endless()
    for _ in range(2):
        next(stream)
    started, images = time.perf_counter(), 0
    for _ in range(batches):
        images += len(next(stream)["img"])
    return images / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="4 photos at 64 px, once (a check, not a figure)")
    args = parser.parse_args()
    if args.quick:
        args.photos, args.repeat, args.imgsz, args.batches = 4, 1, 64, 2
    cores = os.cpu_count() or 1

    from campaign.core.yolo_env import prepare_ultralytics
    from campaign.dataset.resizing import write_resized_copy

    rows = []
    with scratch_folder() as scratch:
        scratch = Path(scratch)
        prepare_ultralytics(scratch / "ultralytics", tensorboard=False)
        started = time.perf_counter()
        size = write_upload(scratch / "raw", args.photos)
        print(
            f"{args.photos} photos, {size / args.photos / 1e6:.1f} MB each, written in "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
        half = scratch / "raw-half" / "phones"
        half.mkdir(parents=True)
        for path in (scratch / "raw" / "phones").iterdir():
            if not path.stem.startswith("IMG_") or int(path.stem[4:]) < args.photos // 2:
                os.link(path, half / path.name)
        for raw, label in ((scratch / "raw-half", "half"), (scratch / "raw", "all")):
            measured = clean(raw, scratch / f"clean-{label}", cores)
            rows.append(
                {
                    "step": f"cleaning, {measured['images']} photos, {cores} workers",
                    "images_per_s": round(measured["images"] / measured["seconds"], 1),
                    "seconds": round(measured["seconds"], 1),
                    "main_peak_mb": round(measured["main_peak_mb"]),
                    "worker_peak_mb": round(measured["worker_peak_mb"]),
                }
            )
            print(rows[-1], flush=True)
        for fmt in ("jpg", "png"):
            width, height = write_largest(scratch / f"raw-{fmt}", fmt)
            measured = clean(scratch / f"raw-{fmt}", scratch / f"clean-{fmt}", 1)
            assert measured["images"] == 1, "the image at the limit must be accepted"
            rows.append(
                {
                    "step": f"cleaning one {width}x{height} {fmt.upper()} ({width * height / 1e6:.0f} MP, the limit)",
                    "images_per_s": round(1 / measured["seconds"], 2),
                    "seconds": round(measured["seconds"], 1),
                    "main_peak_mb": round(measured["main_peak_mb"]),
                    "worker_peak_mb": "",
                }
            )
            print(rows[-1], flush=True)
        clean_root = scratch / "clean-all"
        dataset = write_dataset_yaml(clean_root, args.repeat)
        started = time.perf_counter()
        copy = write_resized_copy(dataset, scratch / f"copy-{args.imgsz}", args.imgsz, workers=cores)
        seconds = time.perf_counter() - started
        rows.append(
            {
                "step": f"copy at {args.imgsz} px, {copy.images} photos, {cores} threads",
                "images_per_s": round(copy.images / seconds, 1),
                "seconds": round(seconds, 1),
                "main_peak_mb": "",
                "worker_peak_mb": "",
            }
        )
        print(rows[-1], flush=True)
        rates = {}
        for label, data in (("full-size photos", dataset), ("copy", scratch / f"copy-{args.imgsz}" / "dataset.yaml")):
            rates[label] = dataloader_rate(data, args.imgsz, 16, cores, args.batches)
            rows.append(
                {
                    "step": f"training dataloader at {args.imgsz} px on the {label}, batch 16, {cores} workers",
                    "images_per_s": round(rates[label], 1),
                    "seconds": round(16 * args.batches / rates[label], 1),
                    "main_peak_mb": "",
                    "worker_peak_mb": "",
                }
            )
            print(rows[-1], flush=True)
    speedup = rates["copy"] / rates["full-size photos"]
    report(
        "phone_photos",
        rows,
        [
            f"dataloader on the copy: {speedup:.1f}x the full-size photos (goal: at least 10x)",
            f"{args.photos} photos of 4032x3024; the train list names each {args.repeat} times",
            f"copy: {copy.bytes_before / 1e6:.0f} MB -> {copy.bytes_after / 1e6:.1f} MB",
        ],
    )


if __name__ == "__main__":
    main()
