"""Time a network's inference: preprocess, inference and postprocess per image, and a photo end to end.

Latency is a property of the network (model, image size, classes), its
format, precision and device, not of how it was trained: the configurations
that differ only in batch, freeze, seed or epochs share one timing
(`timing_representatives`), made on the first of them. Only postprocessing
(NMS) varies with the weights, through how many boxes they give.

Ultralytics' predictor measures the three stages itself; each timed call is
also measured end to end, which gives the throughput. Warm-up calls come
first and are not counted; each setting is repeated and reported as median
and 10th-90th percentile spread. What else ran on the machine meanwhile is
measured (`LoadWatch`) and recorded with every row; a timing shared with
other work is taken again.
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campaign.core.io import atomic_write_bytes

SPEED_FIELDS = [
    "config",
    "timed_config",
    "format",
    "device",
    "device_name",
    "measure",
    "input",
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
    "exclusive",
    "other_cores",
    "other_gpu_processes",
    "split",
    "mAP50",
    "mAP50-95",
    "torch",
    "ultralytics",
]
# A timing counts as exclusive when other processes kept at most this many cores busy on average
# (the workflow's own scheduler and the kernel take a few percent of one) and none used its GPU.
EXCLUSIVE_OTHER_CORES = 0.25
# Timings taken again at most this many times while other work shares the machine.
EXCLUSIVE_TRIES = 3


def network_key(run) -> tuple[str, int, bool]:
    """What a latency depends on among a configuration's arguments (a RunConfig): network, size, GPU or CPU."""
    return run.model, run.imgsz, run.gpus > 0


def timing_representatives(
    configs: dict[str, Any], shard_of: dict[str, int] | None = None, timed: Iterable[str] = ()
) -> dict[str, str]:
    """For each configuration (a RunConfig by name), the one whose timing it shares.

    That is the first by name with its network among those already `timed`
    (whose timing exists), else among all: a configuration added later
    joins the existing timing instead of moving it. Where the campaign is
    split between servers (`shard_of`), only configurations of the same
    shard share, so that each server times on its own machine what it trained.
    """
    shard, timed = shard_of or {}, set(timed)
    first: dict[tuple, str] = {}
    for name in sorted(configs, key=lambda name: (name not in timed, name)):
        first.setdefault((network_key(configs[name]), shard.get(name)), name)
    return {name: first[network_key(run), shard.get(name)] for name, run in configs.items()}


def device_name(device: str) -> str:
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    from ultralytics.utils.torch_utils import get_cpu_info

    return get_cpu_info() or platform.machine()


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "latency_ms": statistics.median(values),
        "latency_ms_p10": _quantile(values, 0.1),
        "latency_ms_p90": _quantile(values, 0.9),
    }


@dataclass
class OtherLoad:
    """What other processes did while a timing ran."""

    cores: float  # cores they kept busy, on average
    gpu_processes: int | None  # other processes on the timed GPU (None: not a GPU, or NVML cannot tell)

    @property
    def exclusive(self) -> bool:
        return self.cores <= EXCLUSIVE_OTHER_CORES and not self.gpu_processes


class LoadWatch:
    """Measures the machine's busy CPU time less this process's own, and other processes on the GPU.

    The timing jobs hold every core and a whole GPU in Snakemake's accounts;
    this checks that nothing outside those accounts (another user's job, a
    second workflow) ran beside them.
    """

    def __init__(self, device: str):
        self.gpu_index = _nvml_index(device)

    def __enter__(self) -> LoadWatch:
        import psutil

        self._process = psutil.Process()
        self._machine0, self._own0 = _busy_seconds(psutil.cpu_times()), _own_seconds(self._process)
        self._gpu0 = _other_gpu_processes(self.gpu_index)
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        import psutil

        wall = max(time.monotonic() - self._started, 1e-6)
        machine = _busy_seconds(psutil.cpu_times()) - self._machine0
        own = _own_seconds(self._process) - self._own0
        gpu = _other_gpu_processes(self.gpu_index)
        others = None if gpu is None or self._gpu0 is None else max(gpu, self._gpu0)
        self.load = OtherLoad(cores=round(max(machine - own, 0.0) / wall, 3), gpu_processes=others)


def _busy_seconds(times) -> float:
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _own_seconds(process) -> float:
    """This process's CPU time, all its threads (ONNX Runtime's and PyTorch's pools run as threads)."""
    times = process.cpu_times()
    return times.user + times.system


def _nvml_index(device: str) -> int | None:
    """The NVML index of the device a timing runs on (the first leased GPU), None on the CPU."""
    if device == "cpu":
        return None
    visible = [entry for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip().isdigit()]
    position = int(str(device).split(",")[0].removeprefix("cuda:") or 0)
    return int(visible[position]) if position < len(visible) else position


def _other_gpu_processes(index: int | None) -> int | None:
    if index is None:
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        processes = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    except Exception:  # no NVML (a declared test device), or a driver that does not list processes
        return None
    pids = [process.pid for process in processes]
    if os.getpid() in pids:
        return len(pids) - 1
    # In a container the driver lists host PIDs: this process is among them once it has a CUDA context.
    import torch

    return max(len(pids) - int(torch.cuda.is_initialized()), 0)


def exclusively(measure: Callable[[], list[dict[str, Any]]], device: str, log: logging.Logger):
    """Rows of `measure()` taken while nothing else loads the machine, with what else ran recorded on each.

    A measurement shared with other work is taken again (up to
    EXCLUSIVE_TRIES); the least disturbed is kept, marked not exclusive if
    none was.
    """
    best: tuple[OtherLoad, list[dict[str, Any]]] | None = None
    for attempt in range(1, EXCLUSIVE_TRIES + 1):
        with LoadWatch(device) as watch:
            rows = measure()
        if best is None or watch.load.cores < best[0].cores:
            best = (watch.load, rows)
        if watch.load.exclusive:
            break
        log.warning(
            "timing %d of %d shared the machine: other processes kept %.2f cores busy, %s other GPU process(es)",
            attempt,
            EXCLUSIVE_TRIES,
            watch.load.cores,
            watch.load.gpu_processes,
        )
        time.sleep(2)
    load, rows = best
    for row in rows:
        row.update(exclusive=load.exclusive, other_cores=load.cores, other_gpu_processes=load.gpu_processes)
    return rows


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
    photos: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Rows of one format: per (half, batch), the network's latency; per half, a photo's end to end.

    `images` are decoded before each call's stages start (Ultralytics reads
    them first), so `measure` "model" is preprocess (resize, normalise) +
    inference + postprocess (NMS where the model has it) per image: what the
    network costs, YOLO26 without NMS included. `photos` (full-size files)
    give `measure` "end_to_end" at batch 1: the wall time from a file's path
    to its boxes, reading and decoding included.
    """
    import torch
    import ultralytics
    from ultralytics import YOLO

    model = YOLO(str(weights))
    photos = list(photos)
    common = {
        "format": fmt,
        "device": device,
        "device_name": device_name(device),
        "imgsz": imgsz,
        "repeats": repeats,
        "torch": torch.__version__,
        "ultralytics": ultralytics.__version__,
    }

    def timed(source_of_call: Callable[[int], list[str]], half: bool):
        """Ultralytics' stage times and the wall time per image of each timed call."""
        stages, walls = [], []
        for call in range(warmup + repeats):
            source = source_of_call(call)
            started = time.perf_counter()
            # Ultralytics 8.4 names fp16 `quantize=16` (its `half` is a deprecated alias).
            results = model.predict(
                source, imgsz=imgsz, batch=len(source), device=device, quantize=16 if half else None, verbose=False
            )
            if device != "cpu":
                torch.cuda.synchronize()
            if call >= warmup:
                walls.append((time.perf_counter() - started) * 1000 / len(source))
                stages.append(results[0].speed)
        return stages, walls

    def stage_medians(stages: list[dict[str, float]]) -> dict[str, float]:
        return {
            f"{stage}_ms": statistics.median(s[stage] for s in stages)
            for stage in ("preprocess", "inference", "postprocess")
        }

    rows = []
    for half in half_options:
        for batch in batches:
            source = [images[i % len(images)] for i in range(batch)]
            stages, walls = timed(lambda call, source=source: source, half)
            per_image = [s["preprocess"] + s["inference"] + s["postprocess"] for s in stages]
            rows.append(
                {
                    **common,
                    "measure": "model",
                    "input": f"decoded test image, {image_sizes(images)}",
                    "batch": batch,
                    "half": half,
                    **stage_medians(stages),
                    **_spread(per_image),
                    "throughput_ips": 1000 / statistics.median(walls),
                }
            )
        if photos:
            # One photo per call, a different one each time where there are several.
            stages, walls = timed(lambda call: [photos[call % len(photos)]], half)
            rows.append(
                {
                    **common,
                    "measure": "end_to_end",
                    "input": f"photo file, {image_sizes(photos)}",
                    "batch": 1,
                    "half": half,
                    **stage_medians(stages),
                    **_spread(walls),
                    "throughput_ips": 1000 / statistics.median(walls),
                }
            )
    return rows


def image_sizes(paths: list[str]) -> str:
    """The median width x height of images, as a speed table's input label says it."""
    from PIL import Image

    sizes = []
    for path in paths:
        with Image.open(path) as image:
            sizes.append(image.size)
    width = statistics.median_low(size[0] for size in sizes)
    height = statistics.median_low(size[1] for size in sizes)
    return f"median {width}x{height} px"


def export_model(weights: Path, fmt: str, imgsz: int, out: Path, work: Path) -> None:
    """Ultralytics' export of the trained weights to `fmt`, written atomically to `out`.

    Ultralytics writes the export beside the weights it reads, so it works
    on a copy in `work` (the training's folder is never touched). Dynamic
    axes let one exported file run every batch size of the study;
    simplification (onnxslim) gives the graph people deploy.
    """
    import shutil

    from ultralytics import YOLO

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    copy = work / "best.pt"
    shutil.copyfile(weights, copy)
    exported = YOLO(str(copy)).export(format=fmt, imgsz=imgsz, dynamic=True, simplify=True, device="cpu")
    atomic_write_bytes(out, Path(exported).read_bytes())
    shutil.rmtree(work)
