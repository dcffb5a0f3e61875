"""Why each training of the plan runs (again), in a teacher's words, and what each reason costs.

Snakemake gives one reason per job in its own terms ("Input files updated by
another job: results/dataset/train.txt, ..."). A late photo in one group
makes every training run again through the split lists, so the root cause
and its cost must be said together: the trainings are grouped by reason
(a new configuration, the data changed, code or arguments changed, an
output missing or damaged), each group with its GPU-hours, and a data change
with what changed in which group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from campaign.core.layout import RESULTS
from campaign.training.run_folder import TrainingFolder

NEW = "new configuration"
DATA = "data changed"
CODE = "code or arguments changed"
MISSING = "output missing or damaged"
WEIGHTS = "pretrained weights changed"
FORCED = "forced by the command line"
OTHER = "other"
ORDER = (NEW, DATA, WEIGHTS, CODE, MISSING, FORCED, OTHER)


def training_reason(name: str, snakemake_reason: str, results: Path = RESULTS) -> str:
    """The reason a training runs, from Snakemake's reason for its job and what its folder holds."""
    said = snakemake_reason
    if said.startswith("Missing output files"):
        folder = TrainingFolder.of(name, results)
        set_aside = folder.summary.with_name(folder.summary.name + ".damaged")
        ran_before = folder.run.exists() or folder.attempts.is_file() or set_aside.is_file()
        return MISSING if ran_before else NEW
    if said.startswith("Forced execution"):
        return FORCED
    if "updated by another job" in said or said.startswith("Updated input files"):
        if "results/dataset" in said:
            return DATA
        if "results/pretrain" in said or "weights" in said:
            return WEIGHTS
        return OTHER
    if any(
        words in said for words in ("Code has changed", "Params have changed", "Software environment", "input files")
    ):
        return CODE
    return OTHER


@dataclass
class ReasonGroup:
    reason: str
    names: list[str] = field(default_factory=list)
    hours: float | None = 0.0  # GPU-hours; None where a training has no estimate


def group_by_reason(
    trainings: dict[str, str], hours: dict[str, float] | None, results: Path = RESULTS
) -> list[ReasonGroup]:
    """Trainings (name -> Snakemake's reason) grouped by reason, in ORDER, each with its GPU-hours."""
    groups: dict[str, ReasonGroup] = {}
    for name, said in sorted(trainings.items()):
        reason = training_reason(name, said, results)
        group = groups.setdefault(reason, ReasonGroup(reason))
        group.names.append(name)
        if group.hours is not None:
            group.hours = group.hours + hours[name] if hours and name in hours else None
    return [groups[reason] for reason in ORDER if reason in groups]


def reasons_table(groups: list[ReasonGroup], data_change: str = "") -> str:
    """The groups as `campaign plan` prints them; `data_change` says what changed in the upload."""
    lines = ["Trainings to run, by reason:"]
    for group in groups:
        hours = f"{group.hours:.2f} GPU-h" if group.hours is not None else "? GPU-h"
        shown = ", ".join(group.names[:3]) + (f", and {len(group.names) - 3} more" if len(group.names) > 3 else "")
        lines.append(f"  {group.reason:<28} {len(group.names):>3}  {hours:>11}  {shown}")
        if group.reason == DATA and data_change:
            lines.append(f"  {'':<28}      since the dataset was cleaned: {data_change}")
    return "\n".join(lines)
