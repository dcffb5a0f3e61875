"""Split a campaign between servers that share one results folder.

Each server runs `snakemake ... --config shard=I/N`: the trainings of shard
I and their evaluations, exports, speed and image-size studies and videos,
nothing shared. Snakemake locks only the files a run will write or read,
so runs on disjoint shards go on side by side in the same folder, once the
data they all read (the cleaned dataset, the workflow's own pretrained
checkpoints) exists: `snakemake prepare` makes it. A final plain run then
finds every training done and builds the tables, figures and report.

Shards are balanced with the campaign's own scheduler (planning/schedule):
each shard is one server of G GPUs (the run's `--resources gpu`, or
`campaign plan --gpus`), and each configuration, longest first, joins the
shard whose schedule then ends first: its training on whole GPUs, then the
jobs after it on that server. A configuration's time is its planned hours
(workload.py) where the probes of `campaign plan --probe` give them, else its
expected training cost from the config alone. The first run of a shard
records the split in results/plan/shards.json, and every server, takeover
and later run uses that record, so that measurements made meanwhile never
move a configuration between servers; a configuration added later joins the
shard that then ends first.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from campaign.core.configurations import ConfigError, RunConfig
from campaign.core.io import atomic_write_json
from campaign.core.layout import SHARD_SPLIT, result_path, split_list
from campaign.core.records import read_json_record
from campaign.planning.schedule import Job, schedule
from campaign.planning.workload import planned_work

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


Work = tuple[dict[str, float], dict[str, float]]  # workload.planned_work: (training GPU-hours, hours after it)


def configuration_jobs(name: str, run: RunConfig, work: Work | None) -> list[Job]:
    """A configuration's jobs as its shard runs them: the training on its GPUs, then the jobs after it.

    In hours from `work`; without it, the training alone at its expected cost (a relative time).
    """
    if not work or name not in work[0]:
        return [Job(name, run.expected_cost(), gpus=max(run.gpus, 1))]
    training = Job(name, work[0][name] / max(run.gpus, 1), gpus=max(run.gpus, 1))
    after = Job(f"{name} (after)", work[1].get(name, 0.0), after=name, training=False)
    return [training, after]


def _weight(name: str, run: RunConfig, work: Work | None) -> float:
    """What ranks a configuration for the split: its GPU time, longest first."""
    if work and name in work[0]:
        return work[0][name] + work[1].get(name, 0.0)
    return _gpu_cost(run)


def shard_end(jobs: list[Job], gpus_per_server: int) -> float:
    """When one server of `gpus_per_server` GPUs ends these jobs (planning/schedule)."""
    return schedule(jobs, 1, gpus_per_server).end


def assign_shards(
    configs: dict[str, RunConfig],
    count: int,
    work: Work | None = None,
    kept: dict[str, int] | None = None,
    gpus_per_server: int = 1,
) -> dict[str, int]:
    """Shard (1..count) of every configuration: longest first, each to the shard whose schedule then ends first.

    `work`: workload.planned_work (else the expected cost from the config);
    ties go to the lower shard, equal configurations by name. `kept`
    configurations stay in their shard.
    """
    kept = {name: shard for name, shard in (kept or {}).items() if name in configs and 1 <= shard <= count}
    members: list[list[Job]] = [[] for _ in range(count)]
    for name, shard in kept.items():
        members[shard - 1] += configuration_jobs(name, configs[name], work)
    shard_of = dict(kept)
    others = sorted((n for n in configs if n not in kept), key=lambda n: (-_weight(n, configs[n], work), n))
    for name in others:
        jobs = configuration_jobs(name, configs[name], work)
        ends = [shard_end(members[index] + jobs, gpus_per_server) for index in range(count)]
        best = min(range(count), key=lambda index: (ends[index], index))
        members[best] += jobs
        shard_of[name] = best + 1
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
    work: Work | None = None,
    gpus_per_server: int = 1,
) -> tuple[dict[str, int], str]:
    """The campaign's split into `count` shards of `gpus_per_server` GPUs each, and what it was balanced by.

    The recorded split (results/plan/shards.json) where there is one for
    `count` shards; `record` writes the split made here (a shard's run does,
    a dry-run or campaign plan does not). `work`: workload.planned_work, where the caller has it.
    """

    path = split_record(results)
    recorded = read_json_record(path) if path.is_file() else {}
    if recorded.get("count") == count and set(recorded.get("configs", {})) == set(configs):
        return recorded["configs"], recorded["basis"]
    work = work or planned_work(configs, config, results, logs)
    gpus = f"{count} server(s) of {gpus_per_server} GPU(s)"
    basis = (
        f"planned hours from the probes, on {gpus}" if work else f"expected training cost from the config, on {gpus}"
    )
    kept = recorded.get("configs") if recorded.get("count") == count else None
    shard_of = assign_shards(configs, count, work, kept, gpus_per_server)
    if kept:
        basis = recorded["basis"] + " (configurations added since joined the shard that then ended first)"
    # Recorded once the shared data exists (`prepare`): a shard started before stops, and leaves nothing.
    if record and split_list("train", results).is_file():
        atomic_write_json(path, {"count": count, "basis": basis, "configs": shard_of})
    return shard_of, basis


def shard_table(
    configs: dict[str, RunConfig],
    count: int,
    config: dict[str, Any],
    results: Path = Path("results"),
    gpus_per_server: int = 1,
) -> str:
    """The split as campaign plan prints it: per shard, its configurations, share of the work and planned end."""

    work = planned_work(configs, config, results)
    shard_of, basis = campaign_shards(configs, count, config, results, work=work, gpus_per_server=gpus_per_server)
    weight = {name: _weight(name, run, work) for name, run in configs.items()}
    total = sum(weight.values()) or 1.0
    lines = [f"  balanced by {basis}"]
    for shard in range(1, count + 1):
        names = [name for name in configs if shard_of[name] == shard]
        share = sum(weight[name] for name in names) / total
        planned = ""
        if work:
            jobs = [job for name in names for job in configuration_jobs(name, configs[name], work)]
            end = shard_end(jobs, gpus_per_server)
            planned = f", {sum(weight[n] for n in names):.2f} GPU-h, ends after {end:.2f} h on {gpus_per_server} GPU(s)"
        lines.append(f"  shard={shard}/{count}: {len(names)} configuration(s), {share:.0%} of the work{planned}")
        lines += [f"      {name}" for name in names]
    return "\n".join(lines)
