"""How well the probes predict training time: plan.py's estimate against the real trainings of the demo.

In a scratch folder, with the demo's config (its four configurations and
their pretraining): first the probes alone (`snakemake results/plan/probes.csv`,
a few steps of each distinct training), then the plan's estimate of every
configuration from them, then the four trainings for real. Prints, per
configuration, the predicted and the measured seconds of its training job
(its Snakemake benchmark file: the job's start-up, every epoch with its
validation and checkpoint, the final validation and plots, as the plan
prices them since the probes time a job's start-up and an epoch's end), the
error, and the epochs' own seconds (train.json's `train_seconds`, the `time`
column of Ultralytics' results.csv); goal: within 15 %.

Run: `.venv/bin/python benchmarks/plan_accuracy.py` (about half an hour on 2
cores, the two pretrainings included). Writes results/benchmarks/plan_accuracy.csv. `--quick` does the same
on the one-configuration quick demo (common.demo_config; about a minute, a
check of the code path, not a figure).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml
from common import (
    ROOT,
    SNAKEMAKE,
    TRAINING_TIME_COLUMNS,
    demo_config,
    report,
    run_timed,
    scratch_folder,
    training_time_rows,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="the one-configuration quick demo (a check)")
    args = parser.parse_args()

    from campaign.core.configurations import expand_campaign

    config = demo_config(quick=args.quick)
    config["detect"] = {"configs": [], "sources": []}
    configs = expand_campaign(config["campaign"])
    with scratch_folder() as scratch:
        work = Path(scratch)
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        base = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(work), "--cores", str(args.cores)]
        probe_seconds, _ = run_timed([*base, "results/plan/probes.csv"], cwd=work)
        targets = [f"results/train/{name}/train.json" for name in configs]
        run_timed([*base, *targets], cwd=work)
        rows = training_time_rows(work, configs)
    worst = max(abs(row["error_pct"]) for row in rows)
    notes = [
        f"probes took {probe_seconds:.0f} s in all (cleaning and splitting included); "
        f"worst error {worst:.1f} % (goal: within 15 %)",
        TRAINING_TIME_COLUMNS,
    ]
    report("plan_accuracy", rows, notes)


if __name__ == "__main__":
    main()
