"""Train one configuration with Ultralytics, resuming an interrupted attempt.

The Ultralytics run folder (`run/`, holding last.pt and the TensorBoard log)
is not a declared Snakemake output, so a failed or killed job leaves it in
place for the next attempt to resume from. The declared outputs (best.pt,
results.csv, train.json) are copied out atomically only once training has
finished.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .io import atomic_write_bytes, atomic_write_json

ARGS_FILE = "campaign_args.json"


def _run_state(run_dir: Path, args_hash: str) -> str:
    """'fresh', 'resume' or 'finished' for the run folder left by earlier attempts."""
    last = run_dir / "weights" / "last.pt"
    stored = run_dir / ARGS_FILE
    if not last.is_file() or not stored.is_file():
        return "fresh"
    if json.loads(stored.read_text()).get("args_hash") != args_hash:
        return "stale"
    from ultralytics.utils.patches import torch_load

    checkpoint = torch_load(last, map_location="cpu")
    # Ultralytics marks a finished run by stripping the optimizer and setting epoch -1.
    return "finished" if checkpoint.get("epoch", -1) == -1 else "resume"


def _set_aside(run_dir: Path, log: logging.Logger) -> None:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = run_dir.with_name(f"{run_dir.name}.stale-{stamp}")
    run_dir.rename(target)
    log.info("arguments changed since the interrupted attempt: kept it aside as %s", target)


def train_model(
    model: str,
    data: Path,
    run_dir: Path,
    train_args: dict[str, Any],
    args_hash: str,
    device: str,
    weights: Path | None,
    log: logging.Logger,
) -> dict[str, Any]:
    """Train (or resume) into run_dir; return a summary of the finished run."""
    from ultralytics import YOLO

    run_dir = run_dir.resolve()
    state = _run_state(run_dir, args_hash)
    if state == "stale":
        _set_aside(run_dir, log)
        state = "fresh"
    started = time.time()
    if state == "resume":
        log.info("resuming the interrupted run in %s", run_dir)
        YOLO(str(run_dir / "weights" / "last.pt")).train(resume=True, device=device, data=str(data))
    elif state == "fresh":
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        atomic_write_json(run_dir / ARGS_FILE, {"args_hash": args_hash, "model": model, "args": train_args})
        yolo = YOLO(f"{model}.yaml")
        if weights is not None:
            log.info("starting from pretrained weights %s", weights)
            yolo.load(str(weights))
        yolo.train(
            data=str(data),
            project=str(run_dir.parent),
            name=run_dir.name,
            exist_ok=True,
            device=device,
            **train_args,
        )
    else:
        log.info("run in %s had already finished; collecting its outputs", run_dir)
    return summarise_run(run_dir, time.time() - started, device, state)


def summarise_run(run_dir: Path, seconds: float, device: str, state: str) -> dict[str, Any]:
    """Epochs run, best epoch and effective batch, read from the run's own files."""
    with open(run_dir / "results.csv", newline="") as stream:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(stream)]
    # Ultralytics 8.4 keeps the epoch with the best mAP50-95 as best.pt.
    fitness = [float(r["metrics/mAP50-95(B)"]) for r in rows]
    best = max(range(len(rows)), key=fitness.__getitem__)
    args = yaml.safe_load((run_dir / "args.yaml").read_text())
    return {
        "epochs_run": len(rows),
        "best_epoch": int(float(rows[best]["epoch"])),
        "best_fitness": fitness[best],
        "batch_used": args["batch"],
        "train_seconds": float(rows[-1]["time"]),
        "job_seconds": seconds,
        "device": device,
        "start": state,
    }


def export_outputs(run_dir: Path, best: Path, results_csv: Path | None, summary_json: Path, summary: dict) -> None:
    """Copy the finished run's files to the declared outputs, summary last."""
    atomic_write_bytes(best, (run_dir / "weights" / "best.pt").read_bytes())
    if results_csv is not None:
        atomic_write_bytes(results_csv, (run_dir / "results.csv").read_bytes())
    atomic_write_json(summary_json, summary)


def run_training_job(job) -> None:
    """Entry point shared by the train and pretrain rules (`job` is the snakemake object)."""
    from .io import job_logger
    from .provenance import now, write_job_provenance
    from .yolo_env import prepare_ultralytics, select_device

    log = job_logger(job.log[0])
    started = now()
    run_dir = Path(job.params.run_dir)
    prepare_ultralytics(run_dir.parent / f".ultralytics_{run_dir.name}")
    device = select_device(job.params.get("gpus", 1))
    log.info("training %s on %s with %s", job.params.model, device, job.params.args)
    weights = job.input.get("weights")
    summary = train_model(
        model=job.params.model,
        data=Path(job.input.dataset),
        run_dir=run_dir,
        train_args=dict(job.params.args),
        args_hash=job.params.get("args_hash") or "",
        device=device,
        weights=Path(weights) if weights else None,
        log=log,
    )
    results_csv = job.output.get("results")
    export_outputs(
        run_dir,
        Path(job.output.weights),
        Path(results_csv) if results_csv else None,
        Path(job.output.summary),
        summary,
    )
    write_job_provenance(job, Path(job.output.provenance), device, started, weights=Path(weights) if weights else None)
    log.info("finished: %s", summary)
