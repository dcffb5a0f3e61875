"""Where the workflow keeps what it makes, in one place.

The rules spell their own outputs, as Snakemake patterns, and hand every
file a job reads to its script. What runs outside a rule job (the `status`
and `plan` commands, the parse-time choice of checkpoints) and the training
job's own files beside its outputs (kept across attempts, never declared:
Snakemake would delete them before a retry) are found here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RESULTS = Path("results")


def pretrained_checkpoint(model: str) -> str:
    """The checkpoint the `pretrain` rule writes for a model (relative to the workflow's folder)."""
    return f"{RESULTS}/pretrain/{model}.pt"


def split_list(split: str, results: Path = RESULTS) -> Path:
    """The cleaned dataset's list of one split (train, val, test)."""
    return results / "dataset" / f"{split}.txt"


def probes_table(results: Path = RESULTS) -> Path:
    """The `plan_probes` rule's table of measured training steps."""
    return results / "plan" / "probes.csv"


@dataclass(frozen=True)
class TrainingFolder:
    """results/train/<config>: one training's outputs and the files its job keeps there while it runs.

    A pretraining keeps the same files in results/pretrain, its run named
    after its model: every side file is named after the run.
    """

    path: Path
    run_name: str = "run"

    @classmethod
    def of(cls, name: str, results: Path = RESULTS) -> TrainingFolder:
        return cls(Path(results) / "train" / name)

    @classmethod
    def around(cls, run: Path) -> TrainingFolder:
        """The folder of a run folder given by a rule."""
        return cls(run.parent, run.name)

    # Outputs of the train rule.
    @property
    def summary(self) -> Path:
        return self.path / "train.json"

    @property
    def monitor(self) -> Path:
        """Every attempt's device samples, written when the training has finished."""
        return self.path / "monitor.csv"

    # Kept across attempts: a retry or a rerun after an interruption resumes from them.
    @property
    def run(self) -> Path:
        """Ultralytics' own run folder: epochs in results.csv, checkpoints in weights/."""
        return self.path / self.run_name

    @property
    def epochs(self) -> Path:
        return self.run / "results.csv"

    @property
    def checkpoints(self) -> list[Path]:
        return [self.run / "weights" / name for name in ("last.pt", "best.pt")]

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


def by_config(files: list[str], names: list[str]) -> dict[str, Path]:
    """A rule's input list of one file per configuration (in `names` order), keyed by configuration.

    Each path must name its configuration: a list out of order is an error, never a silent mix-up.
    """
    if len(files) != len(names):
        raise ValueError(f"{len(files)} files for {len(names)} configurations")
    paired = {name: Path(path) for name, path in zip(names, files)}
    for name, path in paired.items():
        if name not in path.parts and not path.name.startswith(f"{name}."):
            raise ValueError(f"{path} is not a file of configuration {name}")
    return paired


def by_config_and_split(files: list[str], names: list[str], splits: list[str]) -> dict[tuple[str, str], Path]:
    """A rule's input list expanded over configurations, then splits, keyed by (configuration, split)."""
    keys = [(name, split) for name in names for split in splits]
    if len(files) != len(keys):
        raise ValueError(f"{len(files)} files for {len(keys)} configurations and splits")
    paired = {key: Path(path) for key, path in zip(keys, files)}
    for (name, split), path in paired.items():
        if name not in path.parts or split not in path.parts:
            raise ValueError(f"{path} is not a file of configuration {name} on {split}")
    return paired
