"""How right is the status page's "the campaign ends around ..."? Its error on the demo, at a quarter of the way.

Runs the demo campaign (config.yaml) from scratch in a scratch folder with
`snakemake --cores N` and, every few seconds while it runs, asks the status
page's estimate (campaign/reporting/status_page.py: measured seconds per epoch, cost
per configuration, the jobs after each training once any ran) when the
campaign will end. A quarter, half and three quarters of the way are when
that share of all the campaign's training epochs is written. The error of
an estimate is (estimated end - real end) / (real end - when it was made):
negative where it promised too early. Goal: within 20 % at a quarter.

Run: `.venv/bin/python benchmarks/campaign_eta.py` (the demo's time: about
20 minutes on 2 cores). Prints a table and writes
results/benchmarks/campaign_eta.csv. `--quick` runs the one-configuration
quick demo (common.demo_config) for 4 epochs, estimating every second
(about a minute; a check of the code path, not a figure).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import yaml
from common import ROOT, SNAKEMAKE, demo_config, report, scratch_folder

MARKS = (0.25, 0.5, 0.75)


def estimate(workdir: Path, configs, after_jobs: dict) -> tuple[float, float | None]:
    """(share of training epochs written, seconds left by the status page's estimate), as `status.py --html`.

    `after_jobs`: jobs_after_training, worked out once as `campaign status --html --every` does.
    """
    from campaign.planning.runs import jobs_at_a_time, read_runs
    from campaign.reporting.status import config_status
    from campaign.reporting.status_page import campaign_seconds_left, estimate_progress

    statuses = [config_status(workdir / "results", name, run.epochs, run.batch) for name, run in configs.items()]
    total = sum(s.epochs for s in statuses)
    written = sum(min(s.epochs_done, s.epochs) for s in statuses)
    costs = {name: run.expected_cost() for name, run in configs.items()}
    progress = estimate_progress(statuses, costs, workdir / "results", workdir / "logs", after_jobs)
    # The trainings and jobs at a time the live run records (Snakemake's --cores and gpu resource).
    slots, after_slots = jobs_at_a_time(read_runs(workdir), stale_after=600) or (1, 1)
    return written / total, campaign_seconds_left(progress, slots, after_slots)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between estimates")
    parser.add_argument("--quick", action="store_true", help="the quick demo, 4 epochs (a check)")
    args = parser.parse_args()

    from campaign.core.configurations import expand_campaign
    from campaign.planning.workload import jobs_after_training

    config = demo_config(quick=args.quick)
    if args.quick:
        config["campaign"]["defaults"]["epochs"] = 4
        args.every = 1.0
    configs = expand_campaign(config["campaign"])
    samples = []
    with scratch_folder() as scratch:
        workdir = Path(scratch)
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        after_jobs = jobs_after_training(configs, config, workdir / "results")
        command = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", str(args.cores)]
        started = time.time()
        with open(workdir / "snakemake.log", "w") as log:
            process = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
            while process.poll() is None:
                share, left = estimate(workdir, configs, after_jobs)
                samples.append((time.time(), share, left))
                time.sleep(args.every)
        ended = time.time()
        if process.returncode != 0:
            raise SystemExit(f"the demo failed: see {workdir / 'snakemake.log'}")
    rows = []
    for mark in MARKS:
        at = next(((t, s, left) for t, s, left in samples if s >= mark and left is not None), None)
        if at is None:
            rows.append(
                {
                    "progress": f"{mark:.0%} of the epochs",
                    "after_s": "",
                    "estimated_left_s": "",
                    "real_left_s": "",
                    "error": "no estimate",
                }
            )
            continue
        moment, share, left = at
        real = ended - moment
        rows.append(
            {
                "progress": f"{mark:.0%} of the epochs ({share:.0%} when estimated)",
                "after_s": round(moment - started),
                "estimated_left_s": round(left),
                "real_left_s": round(real),
                "error": f"{100 * (left - real) / real:+.0f} %",
            }
        )
    report(
        "campaign_eta",
        rows,
        [
            f"the demo took {ended - started:.0f} s with --cores {args.cores}; {len(samples)} estimates",
            "error = (estimated end - real end) / (real end - moment of the estimate); goal: within 20 % at 25 %",
        ],
    )


if __name__ == "__main__":
    main()
