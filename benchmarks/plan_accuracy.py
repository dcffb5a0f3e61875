"""How well the probes predict training time: plan.py's estimate against the real trainings of the demo.

In a scratch folder, with the demo's config (its four configurations and
their pretraining): first the probes alone (`snakemake results/plan/probes.csv`,
a few steps of each distinct training), then the plan's estimate of every
configuration from them, then the four trainings for real. Prints, per
configuration, the predicted and the measured training seconds (the `time`
column of Ultralytics' results.csv, summed as train.json's `train_seconds`)
and the error; goal: within 25 %.

Run: `.venv/bin/python benchmarks/plan_accuracy.py` (about 12 minutes on 2
cores). Writes results/benchmarks/plan_accuracy.csv. `--quick` does the same
on the one-configuration quick demo (common.demo_config; about a minute, a
check of the code path, not a figure).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import yaml
from common import ROOT, SNAKEMAKE, demo_config, report, run_timed, scratch_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="the one-configuration quick demo (a check)")
    args = parser.parse_args()

    from campaign.core.configurations import expand_campaign
    from campaign.planning.estimate import estimate, read_probes
    from campaign.planning.probe import probe_settings

    config = demo_config(quick=args.quick)
    config["detect"] = {"configs": [], "sources": []}
    configs = expand_campaign(config["campaign"])
    with scratch_folder() as scratch:
        work = Path(scratch)
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        base = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(work), "--cores", str(args.cores)]
        probe_seconds, _ = run_timed([*base, "results/plan/probes.csv"], cwd=work)
        probes = read_probes(work / "results" / "plan" / "probes.csv")
        images = {s: len((work / "results" / "dataset" / f"{s}.txt").read_text().split()) for s in ("train", "val")}
        predicted = {}
        for name, run in configs.items():
            rows = probes[probe_settings(run)[0]]
            predicted[name] = estimate(name, run.parameters(), rows, images["train"], images["val"], 8192).hours * 3600
        targets = [f"results/train/{name}/train.json" for name in configs]
        run_timed([*base, *targets], cwd=work)
        rows = []
        for name in configs:
            measured = json.loads((work / "results" / "train" / name / "train.json").read_text())["train_seconds"]
            rows.append(
                {
                    "config": name,
                    "predicted_s": round(predicted[name], 1),
                    "measured_s": round(measured, 1),
                    "error_pct": round(100 * (predicted[name] - measured) / measured, 1),
                }
            )
    worst = max(abs(row["error_pct"]) for row in rows)
    notes = [
        f"probes took {probe_seconds:.0f} s in all (cleaning and splitting included); "
        f"worst error {worst:.1f} % (goal: within 25 %)"
    ]
    report("plan_accuracy", rows, notes)


if __name__ == "__main__":
    main()
