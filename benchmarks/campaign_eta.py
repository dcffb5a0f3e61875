"""How right is the status page's "the campaign ends around ..."? Its error on the demo, from the first second.

Probes the demo campaign (config.yaml) as `campaign plan --probe` does, then
runs it from scratch in a scratch folder with `snakemake --cores N` and,
every few seconds while it runs, asks the status page's estimate
(campaign/reporting/status_page.py, as `campaign status --html` makes it:
the probes before anything is measured, scaled by the trainings measured,
their own epochs once they run, the jobs after each training from the
probes until their rule has run, all placed by planning/schedule.py) when
the campaign will end. The marks are when 0 % (the start: the first
estimate once the run has recorded itself, which tells the page how many
jobs run at a time), a quarter, half and three quarters of all the
campaign's training epochs are written. The error of an estimate is
(estimated end - real end) / (real end - when it was made): negative where
it promised too early. Goal: within 15 % at every mark.

Run: `.venv/bin/python benchmarks/campaign_eta.py` (the demo's time: over
30 minutes on 2 cores, its probes included). Prints a table and writes
results/benchmarks/campaign_eta.csv; every estimate, as it is made, goes to
campaign_eta_samples.csv beside it. The same run's trainings against the
plan's estimate of each, from the probes (as benchmarks/plan_accuracy.py
measures it), go to campaign_eta_trainings.csv. `--quick` runs the
one-configuration quick demo (common.demo_config) for 4 epochs, estimating
every second (about two minutes; a check of the code path, not a figure).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import yaml
from common import (
    RESULTS,
    ROOT,
    SNAKEMAKE,
    TRAINING_TIME_COLUMNS,
    demo_config,
    report,
    scratch_folder,
    training_time_rows,
)

MARKS = (0.0, 0.25, 0.5, 0.75)


def estimate(
    workdir: Path, configs, config: dict, after_jobs: dict, planned: dict | None
) -> tuple[float, float | None]:
    """(share of training epochs written, seconds left by the status page's estimate), as `status.py --html`.

    `after_jobs` (the resolved campaign's benchmark_stems) and `planned` (planned_seconds, from the
    probes): worked out once, as `campaign status --html --every` does.
    """
    from campaign.planning.runs import jobs_at_a_time, read_runs
    from campaign.planning.workload import campaign_jobs_seconds, pretraining_left
    from campaign.reporting.status import config_status
    from campaign.reporting.status_page import campaign_seconds_left, estimate_progress

    statuses = [config_status(workdir / "results", name, run.epochs, run.batch) for name, run in configs.items()]
    total = sum(s.epochs for s in statuses)
    written = sum(min(s.epochs_done, s.epochs) for s in statuses)
    costs = {name: run.expected_cost() for name, run in configs.items()}
    progress = estimate_progress(statuses, costs, workdir / "results", workdir / "logs", after_jobs, planned)
    # The trainings and jobs at a time the live run records (Snakemake's --cores and gpu resource).
    slots, after_slots = jobs_at_a_time(read_runs(workdir), stale_after=600) or (1, 1)
    pretraining = pretraining_left(configs, config, workdir / "results", workdir / "logs")
    closing = campaign_jobs_seconds(workdir / "results", workdir / "logs")
    return written / total, campaign_seconds_left(progress, slots, after_slots, pretraining, closing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between estimates")
    parser.add_argument("--quick", action="store_true", help="the quick demo, 4 epochs (a check)")
    args = parser.parse_args()

    from campaign.planning.resolved import load_campaign
    from campaign.planning.runs import jobs_at_a_time, read_runs
    from campaign.reporting.status_page import planned_seconds

    config = demo_config(quick=args.quick)
    if args.quick:
        config["campaign"]["defaults"]["epochs"] = 4
        args.every = 1.0
    samples = []
    with scratch_folder() as scratch:
        workdir = Path(scratch)
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        command = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", str(args.cores)]
        # The probes first, as `campaign plan --probe` runs them: the estimate before the first epoch.
        probing = time.time()
        with open(workdir / "probes.log", "w") as log:
            probed = subprocess.run([*command, "results/plan/probes.csv"], cwd=workdir, stdout=log, stderr=log)
        if probed.returncode != 0:
            raise SystemExit(f"the probes failed: see {workdir / 'probes.log'}")
        probe_seconds = time.time() - probing
        # Resolved as `campaign status` resolves it: the schema's defaults filled, the jobs after each training.
        campaign = load_campaign(workdir / "config.yaml", workdir / "results")
        configs, config, after_jobs = campaign.configs, campaign.config, campaign.benchmark_stems()
        planned = planned_seconds(configs, config, workdir / "results", workdir / "logs", after_jobs)
        started = time.time()
        # Each estimate written as it is made: a run cut short still shows what the page said, and when.
        RESULTS.mkdir(parents=True, exist_ok=True)
        with open(workdir / "snakemake.log", "w") as log, open(RESULTS / "campaign_eta_samples.csv", "w") as kept:
            kept.write("seconds_in,share_of_epochs,estimated_left_s\n")
            process = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
            # The page reads how many jobs run at a time from the live run's record, which Snakemake's run
            # writes once it has parsed the workflow: the first estimate is the page's once that is there.
            while process.poll() is None and not jobs_at_a_time(read_runs(workdir), stale_after=600):
                time.sleep(0.2)
            while process.poll() is None:
                share, left = estimate(workdir, configs, config, after_jobs, planned)
                samples.append((now := time.time(), share, left))
                kept.write(f"{now - started:.1f},{share:.4f},{'' if left is None else round(left, 1)}\n")
                kept.flush()
                time.sleep(args.every)
        ended = time.time()
        if process.returncode != 0:
            raise SystemExit(f"the demo failed: see {workdir / 'snakemake.log'}")
        trainings = training_time_rows(workdir, configs)
    rows = []
    for mark in MARKS:
        at = next(((t, sh, left) for t, sh, left in samples if sh >= mark and left is not None), None)
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
            f"the demo took {ended - started:.0f} s with --cores {args.cores} after {probe_seconds:.0f} s of probes; "
            f"{len(samples)} estimates",
            "error = (estimated end - real end) / (real end - moment of the estimate); goal: within 15 % at every mark",
        ],
    )
    # The same run's trainings against the plan's estimate of each (what benchmarks/plan_accuracy.py measures).
    worst = max(abs(row["error_pct"]) for row in trainings)
    report(
        "campaign_eta_trainings", trainings, [f"worst error {worst:.1f} % (goal: within 15 %)", TRAINING_TIME_COLUMNS]
    )


if __name__ == "__main__":
    main()
