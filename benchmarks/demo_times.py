"""The demo's time and each rule's, read from the benchmark files of a complete run.

Every rule writes `logs/<rule>/....benchmark.tsv` (Snakemake's `benchmark:`):
the job's wall-clock seconds. A file is written when its job ends, so the
run's span is from the earliest job start (end minus seconds) to the last
end. Run after the README's demo command (or give its folder with --demo):
`.venv/bin/python benchmarks/demo_times.py`. Prints a table per rule (jobs,
total, median and longest seconds) and the run's span; writes
results/benchmarks/demo_times.csv.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from common import ROOT, report


def job_times(logs: Path) -> list[tuple[str, float, float]]:
    """(rule, seconds, end time) of every job's last benchmark row."""
    jobs = []
    for path in sorted(logs.rglob("*.benchmark.tsv")):
        with open(path, newline="") as stream:
            rows = [row for row in csv.DictReader(stream, delimiter="\t") if row.get("s")]
        if rows:
            rule = path.parent.name if path.parent != logs else path.name.removesuffix(".benchmark.tsv")
            jobs.append((rule, float(rows[-1]["s"]), path.stat().st_mtime))
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, default=ROOT, help="the folder of the complete demo run")
    args = parser.parse_args()
    jobs = job_times(args.demo / "logs")
    if not jobs:
        raise SystemExit(f"no benchmark files under {args.demo / 'logs'}: run the demo first (README)")
    rows = []
    for rule in sorted({rule for rule, _, _ in jobs}):
        seconds = [s for name, s, _ in jobs if name == rule]
        rows.append(
            {
                "rule": rule,
                "jobs": len(seconds),
                "total_s": round(sum(seconds), 1),
                "median_s": round(statistics.median(seconds), 1),
                "longest_s": round(max(seconds), 1),
            }
        )
    rows.sort(key=lambda row: -row["total_s"])
    span = max(end for _, _, end in jobs) - min(end - s for _, s, end in jobs)
    busy = sum(s for _, s, _ in jobs)
    report(
        "demo_times",
        rows,
        [
            f"{len(jobs)} jobs; the run's span {span:.0f} s ({span / 60:.1f} min) from the first job's start to the "
            f"last job's end; {busy:.0f} s of jobs in all (several run at once)",
            "a job's start is its benchmark file's time less its seconds: a run resumed later spans the pause too",
        ],
    )


if __name__ == "__main__":
    main()
