"""Plan a campaign run without training anything.

Lists the jobs Snakemake would run and why (its own dry-run), estimates the
GPU-hours of every configuration still to train, and the makespan on N GPUs.

The estimate is a cost model calibrated on this campaign: each configuration
has a relative cost (`RunConfig.expected_cost`: model size, image area,
epochs, frozen layers); the seconds per unit of cost are the median of the
trainings already finished here. With none finished yet there is nothing to
calibrate on, and the plan says so instead of guessing.

Run from the workflow folder: `python scripts/campaign/plan.py --gpus 4`.
"""

from __future__ import annotations

import argparse
import heapq
import json
import re
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def dry_run_jobs(snakemake_args: list[str]) -> list[dict[str, str]]:
    """Every job of `snakemake -n` with its rule, wildcards and reason."""
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-n", *snakemake_args]
    result = subprocess.run(command, capture_output=True, text=True)
    text = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{text[-3000:]}")
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        match = re.match(r"(?:local)?rule (\w+):", block)
        if not match:
            continue
        wildcards = re.search(r"wildcards: (.*)", block)
        reason = re.search(r"reason: (.*)", block)
        jobs.append(
            {
                "rule": match.group(1),
                "wildcards": wildcards.group(1) if wildcards else "",
                "reason": reason.group(1) if reason else "",
            }
        )
    return jobs


def seconds_per_cost(configs: dict, results: Path) -> float | None:
    """Median measured training seconds per unit of expected cost, over finished trainings."""
    ratios = []
    for name, run in configs.items():
        summary = results / "train" / name / "train.json"
        if summary.is_file():
            ratios.append(json.loads(summary.read_text())["train_seconds"] / run.expected_cost())
    return statistics.median(ratios) if ratios else None


def makespan(durations: list[float], workers: int) -> float:
    """Longest-first greedy schedule of the durations on `workers` identical GPUs."""
    loads = [0.0] * max(workers, 1)
    for duration in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + duration)
    return max(loads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", default="config.yaml")
    parser.add_argument("--results", default="results", type=Path)
    parser.add_argument("--gpus", type=int, default=4, help="GPUs available to the campaign (for the makespan)")
    args = parser.parse_args(argv)

    import yaml

    sys.path.insert(0, str(ROOT / "scripts"))
    from campaign.configurations import expand_campaign

    configs = expand_campaign(yaml.safe_load(Path(args.configfile).read_text())["campaign"])
    jobs = dry_run_jobs(["--configfile", args.configfile])
    jobs = [job for job in jobs if job["rule"] != "all"]
    print(f"{len(jobs)} jobs would run:")
    for rule, count in sorted(Counter(job["rule"] for job in jobs).items()):
        print(f"  {rule:<28} {count}")
    print()
    for job in jobs:
        print(f"  {job['rule']:<22} {job['wildcards']:<44} {job['reason'][:90]}")

    to_train = [job["wildcards"].removeprefix("cfg=") for job in jobs if job["rule"] == "train"]
    rate = seconds_per_cost(configs, args.results)
    print()
    if not to_train:
        print("No training to do.")
        return 0
    if rate is None:
        print(f"{len(to_train)} trainings to do; no finished training to calibrate the estimate on yet.")
        return 0
    print(f"Estimated training time (calibrated on finished trainings: {rate:.3g} s per unit of cost):")
    durations, gpu_seconds = [], 0.0
    for name in to_train:
        run = configs[name]
        gpus = max(run.gpus, 1)
        durations.append(rate * run.expected_cost())
        gpu_seconds += durations[-1] * gpus
        print(f"  {name:<44} {durations[-1] * gpus / 3600:7.2f} GPU-h on {gpus} GPU(s)")
    print(f"Total: {gpu_seconds / 3600:.2f} GPU-h")
    print(f"Makespan on {args.gpus} GPU(s), longest first: {makespan(durations, args.gpus) / 3600:.2f} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
