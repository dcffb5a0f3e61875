"""Measure, before a campaign trains, what one training step costs: time per image and peak memory.

A probe trains one (model, image size, batch per GPU, frozen layers) for a
few iterations on the device a training would really use, on the campaign's
own data, and times a validation pass. Where the batch does not fit, the
device runs out of memory (or Ultralytics halves the batch itself): the
probe records that and measures the largest halved batch that runs. A
second, halved batch gives the slope of memory over batch, from which the
plan computes the largest batch that fits a device of any size.
"""

from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path
from typing import Any

from campaign.gpus.memory_cap import apply_inherited_cap
from campaign.training.memory_evidence import mentions_out_of_memory

PROBE_FIELDS = [
    "probe",
    "model",
    "imgsz",
    "configured_batch",
    "batch",
    "freeze",
    "device",
    "device_name",
    "fits",
    "peak_memory_mb",
    "train_seconds_per_image",
    "val_seconds_per_image",
    "iterations",
    "startup_seconds",
    "epoch_validation_seconds",
    "checkpoint_seconds",
]


# A training's costs besides its steps, as the probe rows name them (seconds).
EPOCH_AND_JOB_COSTS = ("startup_seconds", "epoch_validation_seconds", "checkpoint_seconds")


def _rounded(seconds: float | None) -> float | str:
    return round(seconds, 3) if seconds is not None else ""


class _Enough(Exception):
    """Raised from a callback to end the probe's training once it has measured enough."""


def probe_name(model: str, batch: int, imgsz: int, freeze: int) -> str:
    return f"{model}_b{batch}_img{imgsz}_freeze{freeze}"


def probe_settings(run) -> tuple[str, dict[str, Any]]:
    """The probe of one configuration (a RunConfig): its name and what it measures, one GPU's share of the batch."""
    per_gpu = max(1, run.batch // max(run.gpus, 1))
    settings = {"model": run.model, "imgsz": run.imgsz, "batch": per_gpu, "freeze": run.freeze, "gpus": run.gpus}
    return probe_name(run.model, per_gpu, run.imgsz, run.freeze), settings


def _peak_memory_mb(device: str) -> float:
    """Peak memory of this probe: what CUDA's allocator reserved, or the process's peak RSS on the CPU."""
    if device != "cpu":
        import torch

        return torch.cuda.max_memory_reserved() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak(device: str) -> None:
    if device != "cpu":
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def time_training_steps(
    model: str,
    data: str,
    imgsz: int,
    batch: int,
    freeze: int,
    device: str,
    iterations: int,
    workers: int,
    out: str,
    launched: float | None = None,
) -> dict[str, Any]:
    """Train `iterations` timed steps (after two untimed) at `batch`; the batch the trainer ended at, and the times.

    Ultralytics halves the batch itself when a GPU runs out of memory during
    the first epoch; the batch it trained at is returned, so a caller sees
    that the requested one did not fit. Then one epoch's end as the trainer
    runs it: its validation and its checkpoint, each timed. `launched`: when
    the process was started (time.time()), for the job's start-up.
    """
    from ultralytics import YOLO

    apply_inherited_cap(device)  # this process measures for a job that may rehearse a smaller GPU
    warmup = 2
    stamps: list[float] = []
    images: list[int] = []  # per step: an epoch's last batch holds only what is left of the dataset
    used: dict[str, Any] = {"batch": batch, "step_in_epoch": 0}

    def on_train_start(trainer) -> None:
        used["startup"] = time.time() - launched if launched else None

    def on_epoch_start(trainer) -> None:
        used["step_in_epoch"] = 0

    def on_batch_end(trainer) -> None:
        if trainer.device.type == "cuda":
            import torch

            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
        loader = trainer.train_loader
        left = len(loader.sampler) - used["step_in_epoch"] * loader.batch_size
        images.append(loader.batch_size if loader.drop_last else min(loader.batch_size, left))
        used["step_in_epoch"] += 1
        used["batch"] = trainer.batch_size
        if len(stamps) > warmup + iterations:
            used["peak_memory_mb"] = _peak_memory_mb(device)  # the steps' peak, before the epoch's end below
            used.update(_time_epoch_end(trainer))
            raise _Enough

    out = Path(out)
    yolo = YOLO(f"{model}.yaml")
    yolo.add_callback("on_train_start", on_train_start)
    yolo.add_callback("on_train_epoch_start", on_epoch_start)
    yolo.add_callback("on_train_batch_end", on_batch_end)
    _reset_peak(device)
    try:
        yolo.train(
            data=str(data),
            imgsz=imgsz,
            batch=batch,
            freeze=freeze or None,
            epochs=1000,  # ended by the callback, whatever the dataset's size
            val=False,
            plots=False,
            save=False,
            amp=True,
            workers=workers,
            device=device,
            project=str(out.parent),
            name=out.name,
            exist_ok=True,
            verbose=False,
        )
    except _Enough:
        pass
    # Step k took stamps[k] - stamps[k-1] and trained images[k] images.
    per_image = [(b - a) / n for a, b, n in zip(stamps[warmup:], stamps[warmup + 1 :], images[warmup + 1 :])]
    if not per_image:
        raise RuntimeError(f"the probe of {model} at batch {batch} trained no step")
    return {
        "batch": used["batch"],
        "seconds_per_image": statistics.median(per_image),
        "peak_memory_mb": used.get("peak_memory_mb", _peak_memory_mb(device)),
        "iterations": len(per_image),
        "startup_seconds": used.get("startup"),
        "epoch_validation_seconds": used.get("validation"),
        "checkpoint_seconds": used.get("checkpoint"),
    }


def _time_epoch_end(trainer) -> dict[str, float]:
    """What the trainer does at the end of every epoch, each timed: its validation, then its checkpoint."""
    started = time.perf_counter()
    trainer.metrics, trainer.fitness = trainer.validate()
    validated = time.perf_counter()
    trainer.save_model()
    return {"validation": validated - started, "checkpoint": time.perf_counter() - validated}


def _in_a_fresh_process(function: str, **kwargs: Any) -> dict[str, Any]:
    """Run one of this module's functions in a new Python process: memory peaks are then its own.

    Raises MemoryError where the process ran out of memory (its error or an
    abort said so), RuntimeError for any other failure.
    """
    import json
    import os
    import subprocess
    import sys

    import campaign

    code = (
        "import json, sys;"
        # The settings are the job's (its environment); the label caches written as the job writes them.
        "from campaign.core.yolo_env import write_label_caches_whole; write_label_caches_whole();"
        f"from campaign.planning.probe import {function};"
        f"print('PROBE ' + json.dumps({function}(**json.loads(sys.argv[1]))))"
    )
    arguments = json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in kwargs.items()})
    # The child finds this library where this process found it (a rule job's search path, or the install).
    library = str(Path(campaign.__path__[0]).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [library, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", code, arguments], capture_output=True, text=True, env=env)
    for line in reversed(result.stdout.splitlines()):
        if line.startswith("PROBE "):
            return json.loads(line.removeprefix("PROBE "))
    said = result.stderr[-3000:]
    if mentions_out_of_memory(said):
        raise MemoryError(said.strip().splitlines()[-1] if said.strip() else "out of memory")
    raise RuntimeError(f"the probe process failed (exit {result.returncode}):\n{said}")


def time_validation(model: str, data: Path, imgsz: int, batch: int, device: str, out: Path) -> float:
    """Seconds per image of one validation pass at twice the training batch, as Ultralytics ends each epoch."""
    from ultralytics import YOLO

    metrics = YOLO(f"{model}.yaml").val(
        data=str(data), imgsz=imgsz, batch=batch * 2, device=device, plots=False, verbose=False, project=str(out)
    )
    # Ultralytics' own per-image stages (preprocess, inference, loss, postprocess), without the one-off setup.
    return sum(metrics.speed.values()) / 1000


def probe(
    model: str,
    data: Path,
    imgsz: int,
    batch: int,
    freeze: int,
    device: str,
    device_name: str,
    iterations: int,
    workers: int,
    out: Path,
    largest_trial: int | None = None,
) -> list[dict[str, Any]]:
    """Rows for the requested batch and a halved one (or the halved batches down to one that fits).

    With `largest_trial` (the CPU's plan.cpu_batch) the probe starts there
    instead, below a large configured batch, and the plan extrapolates.
    """
    rows: list[dict[str, Any]] = []
    trial = min(batch, largest_trial) if largest_trial else batch
    while trial >= 1 and len([r for r in rows if r["fits"]]) < 2:
        base = {"probe": probe_name(model, batch, imgsz, freeze), "model": model, "imgsz": imgsz, "freeze": freeze}
        base.update(configured_batch=batch, batch=trial, device=device, device_name=device_name)
        try:
            measured = _in_a_fresh_process(
                "time_training_steps",
                model=model,
                data=data,
                imgsz=imgsz,
                batch=trial,
                freeze=freeze,
                device=device,
                iterations=iterations,
                workers=workers,
                out=out,
                launched=time.time(),
            )
        except MemoryError:
            rows.append({**base, "fits": False, "peak_memory_mb": "", "train_seconds_per_image": ""})
            trial //= 2
            continue
        if measured["batch"] < trial:  # Ultralytics halved it: the requested batch did not fit
            rows.append({**base, "fits": False, "peak_memory_mb": "", "train_seconds_per_image": ""})
            trial = measured["batch"]
            continue
        rows.append(
            {
                **base,
                "fits": True,
                "peak_memory_mb": round(measured["peak_memory_mb"], 1),
                "train_seconds_per_image": measured["seconds_per_image"],
                "iterations": measured["iterations"],
                **{key: _rounded(measured.get(key)) for key in EPOCH_AND_JOB_COSTS},
            }
        )
        trial //= 2
    fitting = [r for r in rows if r["fits"]]
    if fitting:
        seconds = time_validation(model, data, imgsz, fitting[0]["batch"], device, out / "val")
        for row in rows:
            row["val_seconds_per_image"] = seconds
    return rows
