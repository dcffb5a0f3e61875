"""Split a campaign between servers that share one results folder.

Each server runs `snakemake ... --config shard=I/N`: the trainings of shard
I and their evaluations, exports, speed and image-size studies and videos,
nothing shared. Snakemake locks only the files a run will write or read,
so runs on disjoint shards go on side by side in the same folder, once the
data they all read (the cleaned dataset, the workflow's own pretrained
checkpoints) exists: `snakemake prepare` makes it. A final plain run then
finds every training done and builds the tables, figures and report.

Shards are balanced longest first, each configuration to the least loaded
shard, by its planned GPU-hours (training and the jobs after it,
workload.py) where the probes of `campaign plan --probe` give them, else by its
expected training cost from the config alone. The first run of a shard
records the split in results/plan/shards.json, and every server, takeover
and later run uses that record, so that measurements made meanwhile never
move a configuration between servers; a configuration added later joins the
least loaded shard.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from campaign.core.configurations import ConfigError, RunConfig
from campaign.core.io import atomic_write_json
from campaign.core.layout import SHARD_SPLIT, result_path, split_list
from campaign.core.records import read_json_record
from campaign.planning.workload import planned_hours

SHARD_PATTERN = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'2/3' -> (2, 3); None -> None (the whole campaign)."""
    if text is None:
        return None
    match = SHARD_PATTERN.match(str(text).strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ConfigError(
            f"shard: {text!r} is not I/N with 1 <= I <= N (e.g. --config shard=1/2 on the first of two servers)"
        )
    return int(match[1]), int(match[2])


def _gpu_cost(run: RunConfig) -> float:
    """Expected cost in GPU time: expected_cost is per GPU of the run (its wall time)."""
    return run.expected_cost() * max(run.gpus, 1)


def assign_shards(
    configs: dict[str, RunConfig],
    count: int,
    hours: dict[str, float] | None = None,
    kept: dict[str, int] | None = None,
) -> dict[str, int]:
    """Shard (1..count) of every configuration, balancing `hours` (else expected cost); ties broken by name.

    `kept` configurations stay in their shard; the others join, longest first, the least loaded one.
    """
    weight = {name: hours[name] if hours else _gpu_cost(run) for name, run in configs.items()}
    kept = {name: shard for name, shard in (kept or {}).items() if name in configs and 1 <= shard <= count}
    loads = [0.0] * count
    for name, shard in kept.items():
        loads[shard - 1] += weight[name]
    shard_of = dict(kept)
    for name in sorted((n for n in configs if n not in kept), key=lambda n: (-weight[n], n)):
        lightest = min(range(count), key=lambda index: (loads[index], index))
        loads[lightest] += weight[name]
        shard_of[name] = lightest + 1
    return shard_of


def split_record(results: Path = Path("results")) -> Path:
    return result_path(SHARD_SPLIT, results)


def campaign_shards(
    configs: dict[str, RunConfig],
    count: int,
    config: dict[str, Any],
    results: Path = Path("results"),
    logs: Path = Path("logs"),
    record: bool = False,
    hours: dict[str, float] | None = None,
) -> tuple[dict[str, int], str]:
    """The campaign's split into `count` shards, and what it was balanced by.

    The recorded split (results/plan/shards.json) where there is one for
    `count` shards; `record` writes the split made here (a shard's run does,
    a dry-run or campaign plan does not). `hours`: workload.planned_hours, where the caller has them.
    """

    path = split_record(results)
    recorded = read_json_record(path) if path.is_file() else {}
    if recorded.get("count") == count and set(recorded.get("configs", {})) == set(configs):
        return recorded["configs"], recorded["basis"]
    hours = hours or planned_hours(configs, config, results, logs)
    basis = "planned GPU-hours from the probes" if hours else "expected training cost from the config"
    kept = recorded.get("configs") if recorded.get("count") == count else None
    shard_of = assign_shards(configs, count, hours, kept)
    if kept:
        basis = recorded["basis"] + " (configurations added since joined the least loaded shard)"
    # Recorded once the shared data exists (`prepare`): a shard started before stops, and leaves nothing.
    if record and split_list("train", results).is_file():
        atomic_write_json(path, {"count": count, "basis": basis, "configs": shard_of})
    return shard_of, basis


def shard_table(
    configs: dict[str, RunConfig], count: int, config: dict[str, Any], results: Path = Path("results")
) -> str:
    """The split as campaign plan prints it: per shard, its configurations and share of the work."""

    hours = planned_hours(configs, config, results) or {}
    shard_of, basis = campaign_shards(configs, count, config, results, hours=hours)
    weight = {name: hours[name] if hours else _gpu_cost(run) for name, run in configs.items()}
    total = sum(weight.values()) or 1.0
    lines = [f"  balanced by {basis}"]
    for shard in range(1, count + 1):
        names = [name for name in configs if shard_of[name] == shard]
        share = sum(weight[name] for name in names) / total
        planned = f", {sum(hours[n] for n in names):.2f} GPU-h" if hours else ""
        lines.append(f"  shard={shard}/{count}: {len(names)} configuration(s), {share:.0%} of the work{planned}")
        lines += [f"      {name}" for name in names]
    return "\n".join(lines)
