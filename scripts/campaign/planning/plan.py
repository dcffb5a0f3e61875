"""Plan a campaign run without training anything.

Lists the jobs Snakemake would run (its own dry-run; `--jobs` with their
reasons) and, from probes, what each configuration needs before anything is
trained: memory per GPU against the device's, which configurations do not
fit (with the largest batch that does), hours and GPU-hours, and the
makespan on S servers of N GPUs. `--probe` first trains a few steps of every
distinct (model, batch per GPU, image size, frozen layers) on the device a
training would use (Snakemake's `probe` rule, results in results/plan/).
Finished trainings scale the probes' estimate by measured / predicted.

Without probes, the estimate falls back to a cost model calibrated on this
campaign: each configuration has a relative cost (`RunConfig.expected_cost`:
model size, image area, epochs, frozen layers); the seconds per unit of cost
are the median of the trainings already finished here. With neither probes
nor finished trainings the plan says so instead of guessing.

Run from the workflow folder:
`campaign plan --configfile configs/course.yaml --probe --servers 2 --gpus 4`.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from campaign.core.configurations import section_defaults
from campaign.core.layout import CLEANING_REPORT, MANIFEST, RESULTS, WORKFLOW_DIR, probes_table, result_path, split_list
from campaign.core.records import DamagedRecord, read_json_record
from campaign.dataset.upload_changes import upload_changes
from campaign.gpus.leases import check_this_server, nvml_devices
from campaign.planning.estimate import PlannedJob, calibration, estimate, makespan, packed_makespan, read_probes
from campaign.planning.packing import training_needs_mb
from campaign.planning.probe import probe_settings
from campaign.planning.rerun_reasons import group_by_reason, reasons_table
from campaign.planning.resolved import command_campaign
from campaign.planning.shards import shard_table
from campaign.planning.workload import planned_work
from campaign.training.run_folder import TrainingFolder


def dry_run_jobs(snakemake_args: list[str]) -> list[dict[str, str]]:
    """Every job of `snakemake -n` with its rule, wildcards and reason."""
    command = [sys.executable, "-m", "snakemake", "-s", str(WORKFLOW_DIR / "Snakefile"), "-n", *snakemake_args]
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


def finished_seconds(summary: Path) -> float | None:
    """A finished training's measured seconds; None where it has no readable record (it trains again)."""
    if not summary.is_file():
        return None
    try:
        return float(read_json_record(summary, required=("train_seconds",))["train_seconds"])
    except DamagedRecord:
        return None


def seconds_per_cost(configs: dict, results: Path) -> float | None:
    """Median measured training seconds per unit of expected cost, over finished trainings."""

    ratios = []
    for name, run in configs.items():
        seconds = finished_seconds(TrainingFolder.of(name, results).summary)
        if seconds is not None:
            ratios.append(seconds / run.expected_cost())
    return statistics.median(ratios) if ratios else None


def finished_hours(configs: dict, results: Path) -> dict[str, float]:
    """Measured training hours of the finished trainings."""

    hours = {}
    for name in configs:
        seconds = finished_seconds(TrainingFolder.of(name, results).summary)
        if seconds is not None:
            hours[name] = seconds / 3600
    return hours


def planned_device_memory(config: dict, given: float | None) -> tuple[float, str]:
    """The memory of one device the campaign will train on, and where that figure comes from."""

    if given:
        return given, "--device-memory-mb"
    emulated = (config.get("gpu") or {}).get("emulate_memory_mb")
    if emulated:
        return float(emulated), "gpu.emulate_memory_mb"
    declared = (config.get("gpu") or {}).get("devices")
    if isinstance(declared, list) and declared:
        return min(float(d.get("memory_mb", 8192)) for d in declared), "gpu.devices"
    devices = nvml_devices()
    if devices:
        return float(min(d.total_mb for d in devices)), f"NVML ({devices[0].name})"
    return 8192.0, "assumed (8 GB, the course's GPUs); give --device-memory-mb"


def run_probes(configfile: str, cores: int, gpus: int) -> None:

    command = [sys.executable, "-m", "snakemake", "-s", str(WORKFLOW_DIR / "Snakefile"), str(probes_table())]
    command += ["--configfile", configfile, "--cores", str(cores), "--resources", f"gpu={gpus}"]
    print("probing:", " ".join(command[2:]), flush=True)
    if subprocess.run(command).returncode != 0:
        raise SystemExit("the probes failed: see logs/probe/")


def _duration(hours: float) -> str:
    return f"{hours:.2f} h" if hours >= 1 else f"{hours * 60:.1f} min"


def print_probe_plan(configs, to_train: list[str], probes_csv: Path, args, config: dict, after_jobs=None) -> None:
    """`after_jobs` (ResolvedCampaign.benchmark_stems): the jobs after each training (workload.planned_work)."""

    probes = read_probes(probes_csv)
    images = {split: len(split_list(split, args.results).read_text().split()) for split in ("train", "val")}
    device_mb, source = planned_device_memory(config, args.device_memory_mb)
    estimates = {}
    for name, run in configs.items():
        rows = probes.get(probe_settings(run)[0])
        if rows:
            estimates[name] = estimate(name, run.parameters(), rows, images["train"], images["val"], device_mb)
    done = finished_hours(configs, args.results)
    scale = calibration({n: e.hours for n, e in estimates.items()}, done)
    device = next(iter(estimates.values())).device if estimates else "?"
    # Probed on the CPU, the hours are the CPU's: a GPU's are for a probe on the GPU itself.
    unit = "GPU-h" if all(e.on_gpu for e in estimates.values()) else "CPU-h"
    print(f"From the probes on {device} ({images['train']} training, {images['val']} validation images);")
    print(f"device memory {device_mb:.0f} MB per GPU ({source})", end="")
    print(f"; scaled by {scale:.2f}, measured / predicted over {len(done)} finished training(s)" if done else "")
    print()
    print(f"  {'configuration':<40} {'batch/GPU':>9} {'memory MB':>10} {'fits':>5} {'time':>10} {unit:>8}")
    for name, est in estimates.items():
        memory = f"{'~' if est.extrapolated else ''}{est.memory_mb:.0f}" if est.memory_mb is not None else "?"
        state = "done" if name in done else _duration(est.hours * scale)
        print(
            f"  {name:<40} {est.batch_per_gpu:>9} {memory:>10} {'yes' if est.fits else 'NO':>5} {state:>10} "
            f"{est.gpu_hours * scale:8.3f}"
        )
        if not est.fits:
            print(f"      {est.advice(device_mb)}")
    if any(e.extrapolated for e in estimates.values()):
        print("  ~ extrapolated from the smaller batches probed (memory grows linearly with the batch)")
    remaining = [estimates[n] for n in to_train if n in estimates]
    missing = [n for n in to_train if n not in estimates]
    gpu_hours = sum(e.gpu_hours * scale for e in remaining)
    # The jobs after each training (evaluations, bootstrap, export, speed and image-size studies), one GPU each.
    work = planned_work(configs, config, args.results, after_jobs=after_jobs)
    after = {e.config: work[1][e.config] for e in remaining} if work else {}
    jobs = [(e.hours * scale, e.gpus) for e in remaining] + [(hours, 1) for hours in after.values()]
    span = makespan(jobs, args.servers, args.gpus)
    packed = None
    if config["gpu"]["pack"]:
        packed = _packed_plan(configs, remaining, scale, after, probes_csv, args, config, device_mb)
    print()
    print(f"To train: {len(remaining)} configuration(s), {gpu_hours:.2f} {unit} on {device}")
    if after:
        print(
            f"After the trainings: {sum(after.values()):.2f} {unit} of evaluations, bootstrap, exports, speed and "
            "image-size studies (from their benchmark files where any ran, else estimated from the probes)"
        )
    print(f"Makespan on {args.servers} server(s) x {args.gpus} GPU(s), longest first: {_duration(span)}")
    if packed:
        print(
            f"With gpu.pack (at most {config['gpu']['max_share']} per GPU, needs within {device_mb:.0f} MB): "
            f"{_duration(packed.hours)}, each training at its speed probed alone"
        )
        for device, groups in packed.together.items():
            print(f"  {device}: " + "; then ".join(" + ".join(group) for group in groups))
        if not packed.together:
            print("  no two trainings share a GPU: their needs do not fit together (or are not known)")
    if missing:
        print(f"Not probed yet: {', '.join(missing)} (run with --probe)")


def _packed_plan(configs, remaining, scale, after: dict[str, float], probes_csv: Path, args, config, device_mb: float):
    """The makespan with shared GPUs (estimate.packed_makespan), each training's need as the leases know it."""

    needs = training_needs_mb(configs, config["gpu"], probes_csv)
    # One that does not fit (said above, with the batch that does) is planned on a whole GPU.
    fitting = {name: need for name, need in needs.items() if need <= device_mb}
    jobs = [PlannedJob(e.config, e.hours * scale, e.gpus, fitting.get(e.config)) for e in remaining]
    jobs += [PlannedJob(f"after {name}", hours) for name, hours in after.items()]
    return packed_makespan(jobs, args.servers, args.gpus, device_mb, config["gpu"]["max_share"])


def training_gpu_hours(configs: dict, config: dict, results: Path) -> dict[str, float] | None:
    """Each training's GPU-hours: from the probes, else calibrated on finished trainings; None with neither."""

    work = planned_work(configs, config, results)
    if work:
        return work[0]
    rate = seconds_per_cost(configs, results)
    if rate is None:
        return None
    return {name: rate * run.expected_cost() * max(run.gpus, 1) / 3600 for name, run in configs.items()}


def upload_section(config: dict, configs: dict, results: Path, reasons: dict[str, str]) -> str:
    """Why the trainings run, with what each reason costs; what changed in the upload, or waits under freeze."""

    changes = upload_changes(
        Path(config["dataset"]["raw"]), result_path(CLEANING_REPORT, results), result_path(MANIFEST, results)
    )
    said = changes.describe() if changes else ""
    lines = []
    if reasons:
        groups = group_by_reason(reasons, training_gpu_hours(configs, config, results), results)
        lines.append(reasons_table(groups, said))
    else:
        lines.append("No training to run again.")
    if config["dataset"].get("freeze") and changes is not None:
        cleaned = time.strftime("%Y-%m-%d %H:%M", time.localtime(changes.cleaned_at))
        waiting = f"waiting for the next campaign: {said}" if said else "no upload has changed since"
        lines.append(f"dataset.freeze: the dataset cleaned on {cleaned} is kept; {waiting}")
    elif said and not any(reason.startswith("Input files updated") for reason in reasons.values()):
        lines.append(f"Uploads changed since the dataset was cleaned: {said}; the next run cleans them")
    return "\n".join(lines)


def gpu_check_section(gpu: dict) -> str:
    """This server's GPUs against the installed torch: which can train, and what to do about those that cannot."""

    gpu = {**section_defaults("gpu"), **gpu}
    if gpu["devices"] not in (None, "auto"):
        return f"GPUs: {len(gpu['devices'])} declared in gpu.devices (a rehearsal without NVML): no driver to check"
    check = check_this_server()
    lines = [check.table()]
    if gpu["require"] and not check.usable:
        lines.append("  gpu.require is set: every training will stop at once on this server, as said above")
    elif check.gpus and not check.usable:
        lines.append("  gpu.require is not set: the trainings would run on the CPU, each saying so in its log")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", default="config.yaml")
    parser.add_argument("--results", default=RESULTS, type=Path)
    parser.add_argument("--gpus", type=int, default=4, help="GPUs per server (for the makespan)")
    parser.add_argument("--servers", type=int, default=1, help="servers, each with --gpus GPUs")
    parser.add_argument("--probe", action="store_true", help="first probe every distinct training step")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores for the probes")
    parser.add_argument("--device-memory-mb", type=float, help="memory of one GPU the campaign will use")
    parser.add_argument("--jobs", action="store_true", help="list every job with its reason")
    args = parser.parse_args(argv)

    campaign = command_campaign(parser, args)
    config, configs = campaign.config, campaign.configs
    print(gpu_check_section(config.get("gpu", {})))
    print()
    if args.servers > 1:
        print(f"The campaign in {args.servers} shards, one per server sharing this folder:")
        print(shard_table(configs, args.servers, config, args.results, args.gpus))
        print(
            f"  first `snakemake --cores N --configfile {args.configfile} prepare` once; then on server I "
            f"`snakemake --cores N --resources gpu={args.gpus} --configfile {args.configfile} --config "
            f"shard=I/{args.servers}`; last, a plain run for the tables and figures"
        )
        print()
    if args.probe:
        run_probes(args.configfile, args.cores, args.gpus)
    jobs = dry_run_jobs(["--configfile", args.configfile])
    jobs = [job for job in jobs if job["rule"] != "all"]
    print(f"{len(jobs)} jobs would run:")
    for rule, count in sorted(Counter(job["rule"] for job in jobs).items()):
        print(f"  {rule:<28} {count}")
    if args.jobs:
        print()
        for job in jobs:
            print(f"  {job['rule']:<22} {job['wildcards']:<44} {job['reason'][:90]}")

    to_train = [job["wildcards"].removeprefix("cfg=") for job in jobs if job["rule"] == "train"]
    print()
    reasons = {job["wildcards"].removeprefix("cfg="): job["reason"] for job in jobs if job["rule"] == "train"}
    print(upload_section(config, configs, args.results, reasons))
    print()
    probes_csv = probes_table(args.results)
    if probes_csv.is_file():
        print_probe_plan(configs, to_train, probes_csv, args, config, campaign.benchmark_stems())
        return 0
    if not to_train:
        print("No training to do.")
        return 0
    rate = seconds_per_cost(configs, args.results)
    if rate is None:
        print(
            f"{len(to_train)} trainings to do; no probe and no finished training to estimate from: "
            "run with --probe for memory and hours before the first training."
        )
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
    jobs = [(seconds / 3600, max(configs[name].gpus, 1)) for name, seconds in zip(to_train, durations)]
    span = makespan(jobs, args.servers, args.gpus)
    print(f"Makespan on {args.servers} server(s) x {args.gpus} GPU(s), longest first: {span:.2f} h")
    return 0
