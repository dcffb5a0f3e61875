"""Planning time and memory: `snakemake -n` of the campaign at 128, 512 and 3,840 configurations, against the floor.

The default campaign (config.yaml) is extended to 4 models x 4 batch sizes x
4 image sizes x 2 freeze settings = 128 configurations; x 4 seeds = 512; x 5
seeds x 3 hyperparameter sets x 2 patience settings = 3,840 (a teacher's widest
matrix). The floor is benchmarks/bare.smk: the same rules, wildcards and
edges with plain file lists and no validation, i.e. what Snakemake itself
needs to plan a DAG of this shape. Both plan the same jobs and job-to-job
edges (counted in their `--dag` graphs, checked), in empty working folders,
each timed as the median of --repeats runs of the whole command (interpreter
start included); memory is the largest peak resident set of those runs (the
kernel's count for that process, os.wait4).

Run: `.venv/bin/python benchmarks/planning.py` (about 2 minutes on 2 cores;
`--sizes 3840 --repeats 1` about 8 more). Prints a table and writes
results/benchmarks/planning.csv.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import yaml
from common import ROOT, SNAKEMAKE, demo_config, median, report, run_timed, scratch_folder, snakemake_jobs

MODELS = ["yolov8n", "yolov8s", "yolov8m", "yolov8l"]
GOALS = {128: "ratio <= 1.5", 512: "ratio <= 1.5, workflow < 5 s", 3840: "time and memory ratios <= 1.3"}
QUICK = 2  # --quick: two configurations, once: the same code path in seconds (the tests run it)


def campaign_config(configurations: int) -> dict:
    """config.yaml with its matrix widened to 128, 512 or 3,840 configurations (or QUICK), paths made absolute."""
    config = demo_config()
    config["pretrain"]["models"] = MODELS
    matrix = {"model": MODELS, "batch": [8, 16, 32, 64], "imgsz": [64, 96, 128, 160], "freeze": [0, 10]}
    if configurations == QUICK:  # the demo's two models, as its overrides and detections name them
        config["pretrain"]["models"] = MODELS[:2]
        matrix = {"model": MODELS[:2]}
    elif configurations == 512:
        matrix["seed"] = [0, 1, 2, 3]
    elif configurations == 3840:
        matrix |= {"seed": [0, 1, 2, 3, 4], "hyp": ["default", "scratch-low", "scratch-med"], "patience": [100, 50]}
    elif configurations != 128:
        raise ValueError(f"configurations: 128, 512, 3840 or {QUICK}")
    config["campaign"]["matrix"] = matrix
    return config


def bare_config(config: dict) -> dict:
    from campaign.core.configurations import expand_campaign
    from campaign.evaluation.timing import timing_representatives

    configs = expand_campaign(config["campaign"])
    raw = Path(config["dataset"]["raw"])
    return {
        "configs": {name: run.model for name, run in configs.items()},
        "imgsz": {name: run.imgsz for name, run in configs.items()},
        "detect": list(config["detect"]["configs"]),
        "study": list((config.get("study") or {}).get("configs") or configs),
        "formats": [fmt for fmt in (config.get("speed") or {}).get("formats", []) if fmt != "pytorch"],
        "timed_by": timing_representatives(configs),
        "raw_files": sorted(str(path) for path in raw.rglob("*") if path.is_file()),
    }


def run_measured(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak resident memory (MB) and output of a command that must succeed."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({process.returncode}):\n{output[-4000:]}")
    return seconds, usage.ru_maxrss / 1024, output  # ru_maxrss is in KiB on Linux


def plan(snakefile: Path, config: dict, workdir: Path, repeats: int) -> tuple[float, float, int]:
    """Median seconds, peak MB and job count of `snakemake -n` of `snakefile` with `config`."""
    workdir.mkdir(parents=True)
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    command = [*SNAKEMAKE, "-s", str(snakefile), "-d", str(workdir), "--configfile", str(configfile)]
    command += ["-n", "--quiet", "rules"]
    times, peaks, jobs = [], [], set()
    for _ in range(repeats):
        seconds, peak_mb, output = run_measured(command, cwd=workdir)
        times.append(seconds)
        peaks.append(peak_mb)
        jobs.add(snakemake_jobs(output))
    if len(jobs) != 1:
        raise RuntimeError(f"{snakefile}: the job count changed between runs: {jobs}")
    return median(times), max(peaks), jobs.pop()


def dag_edges(snakefile: Path, workdir: Path) -> int:
    """Job-to-job edges of the DAG Snakemake would run (its `--dag` graph), in a folder `plan` prepared."""
    command = [*SNAKEMAKE, "-s", str(snakefile), "-d", str(workdir), "--configfile", str(workdir / "config.yaml")]
    _, output = run_timed([*command, "--dag"], cwd=workdir)
    return sum(1 for line in output.splitlines() if "->" in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} configurations, once (a check, not a figure)")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats = [QUICK], 1

    rows = []
    with scratch_folder() as scratch:
        for size in args.sizes:
            config = campaign_config(size)
            workdir = Path(scratch) / f"campaign{size}"
            workflow, workflow_mb, jobs = plan(ROOT / "Snakefile", config, workdir, args.repeats)
            floor, floor_mb, bare_jobs = plan(
                ROOT / "benchmarks" / "bare.smk", bare_config(config), Path(scratch) / f"bare{size}", args.repeats
            )
            if bare_jobs != jobs:
                raise RuntimeError(f"bare.smk plans {bare_jobs} jobs, the workflow {jobs}: not the same DAG")
            edges = dag_edges(ROOT / "Snakefile", Path(scratch) / f"campaign{size}")
            bare_edges = dag_edges(ROOT / "benchmarks" / "bare.smk", Path(scratch) / f"bare{size}")
            if bare_edges != edges:
                raise RuntimeError(f"bare.smk has {bare_edges} edges, the workflow {edges}: not the same DAG")
            rows.append(
                {
                    "configurations": size,
                    "jobs": jobs,
                    "edges": edges,
                    "workflow_s": round(workflow, 2),
                    "bare_snakefile_s": round(floor, 2),
                    "ratio": round(workflow / floor, 2),
                    "workflow_peak_mb": round(workflow_mb),
                    "bare_snakefile_peak_mb": round(floor_mb),
                    "memory_ratio": round(workflow_mb / floor_mb, 2),
                    "goal": GOALS.get(size, ""),
                }
            )
    report("planning", rows, [f"median of {args.repeats} runs of `snakemake -n --quiet rules` each"])


if __name__ == "__main__":
    main()
