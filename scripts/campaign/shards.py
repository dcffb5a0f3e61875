"""Split a campaign between servers that share one results folder.

Each server runs `snakemake ... --config shard=I/N`: the trainings of shard
I and their evaluations, exports, speed and image-size studies and videos,
nothing shared. Snakemake locks only the files a run will write or read,
so runs on disjoint shards go on side by side in the same folder, once the
data they all read (the cleaned dataset, the workflow's own pretrained
checkpoints) exists: `snakemake prepare` makes it. A final plain run then
finds every training done and builds the tables, figures and report.

Shards are balanced by each configuration's expected training cost
(longest first, each to the least loaded shard), computed from the config
alone, so that every server, and plan.py, derive the same split.
"""

from __future__ import annotations

import re

from .configurations import ConfigError, RunConfig

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


def assign_shards(configs: dict[str, RunConfig], count: int) -> dict[str, int]:
    """Shard (1..count) of every configuration, balancing expected cost; ties broken by name."""
    loads = [0.0] * count
    shard_of = {}
    for name, run in sorted(configs.items(), key=lambda item: (-_gpu_cost(item[1]), item[0])):
        lightest = min(range(count), key=lambda index: (loads[index], index))
        loads[lightest] += _gpu_cost(run)
        shard_of[name] = lightest + 1
    return shard_of


def shard_table(configs: dict[str, RunConfig], count: int) -> str:
    """The split as plan.py prints it: per shard, its configurations and share of the expected cost."""
    shard_of = assign_shards(configs, count)
    total = sum(map(_gpu_cost, configs.values())) or 1.0
    lines = []
    for shard in range(1, count + 1):
        names = [name for name in configs if shard_of[name] == shard]
        cost = sum(_gpu_cost(configs[name]) for name in names)
        lines.append(f"  shard={shard}/{count}: {len(names)} configuration(s), {cost / total:.0%} of the expected cost")
        lines += [f"      {name}" for name in names]
    return "\n".join(lines)
