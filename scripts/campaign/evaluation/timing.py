"""Time a trained model's inference: preprocess, inference and postprocess per image.

Ultralytics' predictor measures the three stages itself; each timed call is
also measured end to end, which gives the throughput. Warm-up calls come
first and are not counted; each setting is repeated and reported as median
and spread.
"""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path
from typing import Any

SPEED_FIELDS = [
    "config",
    "format",
    "device",
    "device_name",
    "batch",
    "half",
    "imgsz",
    "repeats",
    "preprocess_ms",
    "inference_ms",
    "postprocess_ms",
    "latency_ms",
    "latency_ms_p10",
    "latency_ms_p90",
    "throughput_ips",
    "split",
    "mAP50",
    "mAP50-95",
    "torch",
    "ultralytics",
]


def device_name(device: str) -> str:
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    from ultralytics.utils.torch_utils import get_cpu_info

    return get_cpu_info() or platform.machine()


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def time_model(
    weights: Path,
    images: list[str],
    imgsz: int,
    device: str,
    batches: list[int],
    half_options: list[bool],
    warmup: int,
    repeats: int,
    fmt: str = "pytorch",
) -> list[dict[str, Any]]:
    """One row per (half, batch): median stage times over `repeats` timed calls, end-to-end latency and throughput.

    The latency includes pre- and post-processing (NMS where the model has
    it), so a family without NMS (YOLO26) is compared on what a user waits for.
    """
    import torch
    import ultralytics
    from ultralytics import YOLO

    model = YOLO(str(weights))
    rows = []
    for half in half_options:
        for batch in batches:
            source = [images[i % len(images)] for i in range(batch)]
            stages: list[dict[str, float]] = []
            walls: list[float] = []
            for call in range(warmup + repeats):
                started = time.perf_counter()
                results = model.predict(source, imgsz=imgsz, batch=batch, device=device, half=half, verbose=False)
                if device != "cpu":
                    torch.cuda.synchronize()
                wall = (time.perf_counter() - started) * 1000 / batch
                if call >= warmup:
                    walls.append(wall)
                    stages.append(results[0].speed)
            per_image = [s["preprocess"] + s["inference"] + s["postprocess"] for s in stages]
            rows.append(
                {
                    "format": fmt,
                    "device": device,
                    "device_name": device_name(device),
                    "batch": batch,
                    "half": half,
                    "imgsz": imgsz,
                    "repeats": repeats,
                    "preprocess_ms": statistics.median(s["preprocess"] for s in stages),
                    "inference_ms": statistics.median(s["inference"] for s in stages),
                    "postprocess_ms": statistics.median(s["postprocess"] for s in stages),
                    "latency_ms": statistics.median(per_image),
                    "latency_ms_p10": _quantile(per_image, 0.1),
                    "latency_ms_p90": _quantile(per_image, 0.9),
                    "throughput_ips": 1000 / statistics.median(walls),
                    "torch": torch.__version__,
                    "ultralytics": ultralytics.__version__,
                }
            )
    return rows


def export_model(weights: Path, fmt: str, imgsz: int, out: Path, work: Path) -> None:
    """Ultralytics' export of the trained weights to `fmt`, written atomically to `out`.

    Ultralytics writes the export beside the weights it reads, so it works
    on a copy in `work` (the training's folder is never touched). Dynamic
    axes let one exported file run every batch size of the study;
    simplification (onnxslim) gives the graph people deploy.
    """
    import shutil

    from ultralytics import YOLO

    from campaign.core.io import atomic_write_bytes

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    copy = work / "best.pt"
    shutil.copyfile(weights, copy)
    exported = YOLO(str(copy)).export(format=fmt, imgsz=imgsz, dynamic=True, simplify=True, device="cpu")
    atomic_write_bytes(out, Path(exported).read_bytes())
    shutil.rmtree(work)
