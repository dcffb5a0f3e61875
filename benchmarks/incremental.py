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
`--quick` makes its own one-configuration demo (common.demo_config) in a
scratch folder first and changes that configuration's epochs (about two
minutes; a check of the code path, not a figure).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import yaml
from common import ROOT, SNAKEMAKE, demo_config, report, run_timed, scratch_folder, snakemake_jobs

CHANGED = {"match": {"model": "yolov8n", "freeze": 10}, "set": {"epochs": 10}}
CHANGED_QUICK = {"match": {"model": "yolov8n"}, "set": {"epochs": 2}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--demo", type=Path, default=ROOT, help="working folder of the complete demo run")
    parser.add_argument("--quick", action="store_true", help="a one-configuration demo of its own (a check)")
    args = parser.parse_args()

    with scratch_folder() as scratch:
        if args.quick:
            args.demo = quick_demo(Path(scratch) / "quick-demo")
        rows = measure(args.demo, args.cores, CHANGED_QUICK if args.quick else CHANGED, Path(scratch) / "copy")
    report("incremental", rows)


def quick_demo(folder: Path) -> Path:
    """A folder laid out as the repository's demo (config.yaml, demo/), with the quick demo's config."""
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(demo_config(quick=True)))
    (folder / "demo").symlink_to(ROOT / "demo")
    return folder


def measure(demo: Path, cores: int, changed: dict, scratch: Path) -> list[dict]:
    """The demo brought up to date where it is not, then the three steps on a copy of it in `scratch`."""
    rows = []
    base = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--cores", str(cores)]
    seconds, output = run_timed([*base, "-d", str(demo), "-n"], cwd=demo)
    if snakemake_jobs(output):
        seconds, output = run_timed([*base, "-d", str(demo)], cwd=demo)
        rows.append(step("bring the demo run up to date first", seconds, output, "-"))

    workdir = scratch / "demo"
    for part in ("results", "logs", ".snakemake"):
        shutil.copytree(demo / part, workdir / part, symlinks=True, ignore=not_the_demos)
    # The uploads and videos by the same relative paths: Snakemake compares input sets by path.
    (workdir / "demo").symlink_to((demo / "demo").resolve())
    shutil.copyfile(demo / "config.yaml", workdir / "config.yaml")
    command = [*base, "-d", str(workdir)]

    seconds, output = run_timed(command, cwd=workdir)
    rows.append(step("no-op run", seconds, output, "0 jobs"))

    figure = ["--force", "results/figures/per_class_ap.png"]
    seconds, output = run_timed([*command, *figure], cwd=workdir)
    rows.append(step("rebuild one figure", seconds, output, "1 job, < 15 s"))

    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["campaign"]["overrides"] = [*config["campaign"].get("overrides", []), changed]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    seconds, output = run_timed(command, cwd=workdir)
    epochs = changed["set"]["epochs"]
    rows.append(step(f"change one configuration (epochs -> {epochs})", seconds, output, "its jobs only"))
    return rows


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
