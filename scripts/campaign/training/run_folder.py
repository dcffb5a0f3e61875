"""One training's folder: its outputs, the run Ultralytics writes, the files kept beside it, and its state.

results/train/<config>/ holds the train rule's outputs (train.json, best.pt,
...) and, kept across attempts and never declared (Snakemake would delete
them before a retry), Ultralytics' run folder `run/` (checkpoints in
weights/, epochs in results.csv) with side files named after it: the
attempts, the arguments, the stderr copy, the one-trainer lock, the disk
reserve. From them this module reads where a new attempt starts: fresh,
resumed from the last epoch, or only collected; a run that cannot be resumed
is set aside for a person to look at.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from campaign.core.epoch_table import read_epoch_table
from campaign.core.io import atomic_write_bytes
from campaign.core.layout import RESULTS, TRAINING_MONITOR, TRAINING_RUN, TRAINING_SUMMARY, result_path
from campaign.core.records import damage_of, read_json_record


@dataclass(frozen=True)
class TrainingFolder:
    """results/train/<config>: one training's outputs and the files its job keeps there while it runs.

    A pretraining keeps the same files in results/pretrain, its run named
    after its model: every side file is named after the run.
    """

    path: Path
    run_name: str = Path(TRAINING_RUN).name

    @classmethod
    def of(cls, name: str, results: Path = RESULTS) -> TrainingFolder:
        return cls(result_path(TRAINING_SUMMARY, results, cfg=name).parent)

    @classmethod
    def around(cls, run: Path) -> TrainingFolder:
        """The folder of a run folder given by a rule."""
        return cls(run.parent, run.name)

    # Outputs of the train rule.
    @property
    def summary(self) -> Path:
        return self.path / Path(TRAINING_SUMMARY).name

    @property
    def monitor(self) -> Path:
        """Every attempt's device samples, written when the training has finished."""
        return self.path / Path(TRAINING_MONITOR).name

    # Kept across attempts: a retry or a rerun after an interruption resumes from them.
    @property
    def run(self) -> Path:
        """Ultralytics' own run folder: epochs in results.csv, checkpoints in weights/."""
        return self.path / self.run_name

    @property
    def epochs(self) -> Path:
        return self.run / "results.csv"

    @property
    def last_checkpoint(self) -> Path:
        """Written at the end of every epoch: what a resumed attempt starts from."""
        return self.run / "weights" / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.run / "weights" / "best.pt"

    @property
    def checkpoints(self) -> list[Path]:
        return [self.last_checkpoint, self.best_checkpoint]

    @property
    def args_file(self) -> Path:
        """Arguments of the attempt in the run, kept beside it: Ultralytics' DDP launcher empties the run."""
        return self.path / f"{self.run_name}.args.json"

    @property
    def attempt_under_way(self) -> Path:
        """The attempt now running; still there when the next one starts, it ended without a word."""
        return self.path / f"{self.run_name}.attempt.json"

    @property
    def stderr_copy(self) -> Path:
        """Everything the attempts wrote on stderr (workers included), kept beside the run."""
        return self.path / f"{self.run_name}.stderr.log"

    @property
    def job_record(self) -> Path:
        """Host, process and device of the job training now (or last)."""
        return self.path / "job.json"

    @property
    def live_monitor(self) -> Path:
        """Device samples as they are taken, every attempt appending."""
        return self.monitor_tensorboard / "samples.csv"

    @property
    def monitor_tensorboard(self) -> Path:
        return self.path / f"{self.run_name}.monitor"

    @property
    def attempts(self) -> Path:
        """One JSON line per attempt: batch, device, epochs, how it ended."""
        return self.path / f"{self.run_name}.attempts.jsonl"

    @property
    def trainer_lock(self) -> Path:
        """Held by the one job that trains the run: a second job for it waits (training_lock.py)."""
        return self.path / f"{self.run_name}.lock"

    @property
    def space_reserve(self) -> Path:
        """A little disk space set aside while an attempt runs, freed to record how it ended on a full disk."""
        return self.path / f"{self.run_name}.reserve"


def read_checkpoint(path: Path) -> dict[str, Any] | None:
    """A checkpoint's contents; None where it is missing or cut short."""
    from ultralytics.utils.patches import torch_load

    if not path.is_file():
        return None
    try:
        return torch_load(path, map_location="cpu")
    except Exception:  # a truncated file fails in the zip reader or the unpickler
        return None


def checkpoint_progress(folder: TrainingFolder) -> dict[str, Any]:
    """Epochs the run's last checkpoint holds and the batch the trainer really used.

    The trainer's own batch is in the checkpoint's `train_args`: Ultralytics
    halves it there when a GPU runs out of memory during the first epoch.
    """
    checkpoint = read_checkpoint(folder.last_checkpoint) or read_checkpoint(folder.best_checkpoint)
    if checkpoint is None:
        return {"epochs_done": 0, "batch_trained": None}
    epoch = checkpoint.get("epoch", -1)
    train_args = checkpoint.get("train_args") or {}
    epochs_done = train_args.get("epochs", 0) if epoch == -1 else epoch + 1
    if epoch == -1 and folder.epochs.is_file():  # finished; early stopping ends before `epochs`
        epochs_done = len(folder.epochs.read_text().strip().splitlines()) - 1
    return {"epochs_done": epochs_done, "batch_trained": train_args.get("batch")}


def run_state(folder: TrainingFolder, args_hash: str) -> tuple[str, int]:
    """('fresh' | 'stale' | 'damaged' | 'resume' | 'finished', last epoch done) of an earlier attempt.

    Epochs count from 1, as in results.csv (checkpoints count from 0).
    """
    if not folder.last_checkpoint.is_file() or not folder.args_file.is_file():
        return "fresh", 0
    if damage_of(folder.args_file) or read_json_record(folder.args_file).get("args_hash") != args_hash:
        return "stale", 0
    checkpoint = read_checkpoint(folder.last_checkpoint)
    if checkpoint is None:
        return "damaged", 0
    return checkpoint_state(checkpoint)


def checkpoint_state(checkpoint: dict[str, Any]) -> tuple[str, int]:
    # Ultralytics marks a finished run by stripping the optimizer and setting epoch -1.
    if checkpoint.get("epoch", -1) == -1:
        return "finished", 0
    return "resume", checkpoint["epoch"] + 1


def recover_damaged_run(folder: TrainingFolder, log: logging.Logger) -> tuple[str, int]:
    """Resume from best.pt where last.pt was cut short; start afresh where both were.

    Ultralytics writes last.pt in place, so a job killed during that write
    (a dropped SSH session, a node failure) leaves it incomplete, and every
    later attempt would fail on it. best.pt is written after last.pt, from
    the same epoch or an earlier one, so one of the two is whole.
    """
    checkpoint = read_checkpoint(folder.best_checkpoint)
    if checkpoint is None:
        set_aside(folder, "damaged", "last.pt and best.pt are both incomplete", log)
        return "fresh", 0
    state, epoch = checkpoint_state(checkpoint)
    log.info("last.pt is incomplete (killed while it was written): continuing from best.pt (%s)", state)
    if state == "resume":
        atomic_write_bytes(folder.last_checkpoint, folder.best_checkpoint.read_bytes())
    return state, epoch


def drop_epochs_after(results_csv: Path, last_epoch: int, log: logging.Logger) -> None:
    """Forget result rows of epochs the checkpoint does not contain.

    Ultralytics appends an epoch's row to results.csv before it saves
    last.pt; a job killed in between would otherwise list that epoch twice
    once it has been trained again.
    """
    if not results_csv.is_file():
        return
    text = results_csv.read_text()
    if text and not text.endswith("\n"):  # a row cut short (a kill, a full disk): that epoch is trained again
        log.info("dropping the last result row of %s, cut short: %r", results_csv, text.rsplit("\n", 1)[-1])
        atomic_write_bytes(results_csv, text[: text.rfind("\n") + 1].encode())
    read_epoch_table(results_csv)  # a damaged table is named here, not misread below
    lines = results_csv.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if line.strip() and int(float(line.split(",", 1)[0])) <= last_epoch]
    if len(kept) != len(lines):
        log.info("dropping %d result row(s) after epoch %d, trained again now", len(lines) - len(kept), last_epoch)
        atomic_write_bytes(results_csv, "".join(kept).encode())


def set_aside(folder: TrainingFolder, label: str, reason: str, log: logging.Logger) -> None:
    """Keep an earlier attempt that cannot be resumed as run.<label>-<time>, for a person to look at."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = folder.path / f"{folder.run_name}.{label}-{stamp}"
    folder.run.rename(target)
    log.info("%s: kept the interrupted attempt aside as %s and starting afresh", reason, target)


def start_state(folder: TrainingFolder, args_hash: str, log: logging.Logger) -> tuple[str, int]:
    """How the next attempt starts ('fresh' | 'resume' | 'finished', last epoch done).

    A run trained with other arguments, data or weights, or whose checkpoints
    are both cut short, is set aside first (kept for a person to look at).
    """
    state, last_epoch = run_state(folder, args_hash)
    if state == "stale":
        set_aside(folder, "stale", "arguments, data or weights changed since the interrupted attempt", log)
        return "fresh", 0
    if state == "damaged":
        return recover_damaged_run(folder, log)
    return state, last_epoch
