"""Incremental work after a complete demo run: a no-op run, one figure rebuilt, one configuration changed.

The demo's results are copied (with Snakemake's metadata, times kept) into a
scratch folder, so that the measurements never touch the repository's own
results. With no complete demo run there, it is made first (about 13
minutes on 2 cores) and its time is reported too. Then, each as a whole
`snakemake` command with its job count:

1. no-op: `snakemake --cores N` with nothing changed;
2. one figure: `snakemake --cores N --force results/figures/per_class_ap.png`
   (as after editing the figure's script);
3. one configuration changed: the demo's yolov8n freeze-10 configuration
   gets 10 epochs instead of 15 (an override in the config), then
   `snakemake --cores N`: it trains, evaluates and times that configuration
   only, and rebuilds the summary and figures.

Run: `.venv/bin/python benchmarks/incremental.py` (2 to 3 minutes after a
demo run). Prints a table and writes results/benchmarks/incremental.csv.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import yaml
from common import ROOT, SNAKEMAKE, report, run_timed, scratch_folder, snakemake_jobs

CHANGED = {"match": {"model": "yolov8n", "freeze": 10}, "set": {"epochs": 10}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--demo", type=Path, default=ROOT, help="working folder of the complete demo run")
    args = parser.parse_args()

    rows = []
    base = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--cores", str(args.cores)]
    seconds, output = run_timed([*base, "-d", str(args.demo), "-n"], cwd=args.demo)
    if snakemake_jobs(output):
        seconds, output = run_timed([*base, "-d", str(args.demo)], cwd=args.demo)
        rows.append(step("bring the demo run up to date first", seconds, output, "-"))

    with scratch_folder() as scratch:
        workdir = Path(scratch) / "demo"
        for part in ("results", "logs", ".snakemake"):
            shutil.copytree(args.demo / part, workdir / part, symlinks=True, ignore=not_the_demos)
        # The uploads and videos by the same relative paths: Snakemake compares input sets by path.
        (workdir / "demo").symlink_to((args.demo / "demo").resolve())
        shutil.copyfile(args.demo / "config.yaml", workdir / "config.yaml")
        command = [*base, "-d", str(workdir)]

        seconds, output = run_timed(command, cwd=workdir)
        rows.append(step("no-op run", seconds, output, "0 jobs"))

        figure = ["--force", "results/figures/per_class_ap.png"]
        seconds, output = run_timed([*command, *figure], cwd=workdir)
        rows.append(step("rebuild one figure", seconds, output, "1 job, < 15 s"))

        config = yaml.safe_load((workdir / "config.yaml").read_text())
        config["campaign"]["overrides"].append(CHANGED)
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        seconds, output = run_timed(command, cwd=workdir)
        rows.append(step("change one configuration (epochs 15 -> 10)", seconds, output, "its jobs only"))

    report("incremental", rows)


def step(name: str, seconds: float, output: str, goal: str) -> dict:
    return {"step": name, "jobs": snakemake_jobs(output), "seconds": round(seconds, 1), "goal": goal}


def not_the_demos(folder: str, names: list[str]) -> list[str]:
    """What a copy of the demo leaves out: locks and run records (they would make the copy look busy), and
    results/benchmarks, where this very copy is made (copying it would copy the copy into itself)."""
    path = Path(folder)
    if path.name == ".snakemake":
        return ["locks", "incomplete", "campaign-runs"]
    if path.name == "results" and path.parent.name != "results":
        return ["benchmarks"]
    return []


if __name__ == "__main__":
    main()
