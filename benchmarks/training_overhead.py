"""Training overhead: one configuration trained through the workflow, against `yolo train` alone.

Both train the same model on the same cleaned demo dataset with the same
arguments (the workflow's own `train_args` of that configuration, written out
as `yolo train key=value ...`), on the same device, with the same offline
Ultralytics settings (TensorBoard on for both). The workflow side is the
whole `snakemake --cores N results/train/<cfg>/best.pt` command: Snakemake's
start and DAG, the job script, the device lease and monitor, Ultralytics'
training, exporting the outputs and hashing them for provenance. The dataset
is cleaned and split once beforehand, untimed. Runs alternate (workflow,
yolo, workflow, ...) so that a slow phase of the machine hits both.

Run: `.venv/bin/python benchmarks/training_overhead.py` (about 5 minutes on
2 cores with the default 5 epochs). Prints a table and writes
results/benchmarks/training_overhead.csv.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import yaml
from common import ROOT, SNAKEMAKE, demo_config, median, report, run_timed, scratch_folder


def single_configuration(epochs: int) -> dict:
    """The demo config with one configuration (the demo's default one, from scratch) and nothing else."""
    config = demo_config()
    config["campaign"]["defaults"].update(epochs=epochs, pretrained=False)
    config["campaign"]["matrix"] = {}
    config["campaign"]["overrides"] = []
    config["detect"] = {"configs": [], "sources": []}
    return config


def yolo_command(model: str, dataset: Path, args: dict, device: str, project: Path) -> list[str]:
    """`yolo train` with the arguments and the device the workflow's job trained with."""
    command = [str(Path(sys.executable).with_name("yolo")), "train", f"model={model}.yaml", f"data={dataset}"]
    command += [f"{key}={value}" for key, value in args.items() if value is not None]
    return command + [f"device={device}", f"project={project}", "name=run", "exist_ok=True"]


def yolo_environment(settings: Path) -> dict[str, str]:
    """The settings the workflow's jobs use (offline, fonts, TensorBoard), for `yolo` too."""
    from campaign.core.yolo_env import prepare_ultralytics

    saved = dict(os.environ)
    prepare_ultralytics(settings)  # writes settings.json and the fonts; sets the variables
    environment = dict(os.environ)
    os.environ.clear()
    os.environ.update(saved)
    return environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="one epoch, once (a check, not a figure)")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.repeats = 1, 1

    from campaign.core.configurations import expand_campaign

    config = single_configuration(args.epochs)
    (name, run), *_ = expand_campaign(config["campaign"]).items()
    with scratch_folder() as scratch:
        workdir = Path(scratch) / "campaign"
        workdir.mkdir()
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        snakemake = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", str(args.cores)]
        run_timed([*snakemake, "results/dataset/dataset.yaml"], cwd=workdir)
        dataset = workdir / "results" / "dataset" / "dataset.yaml"
        environment = yolo_environment(Path(scratch) / "yolo-settings")

        workflow_times, yolo_times, yolo = [], [], []
        for _ in range(args.repeats):
            shutil.rmtree(workdir / "results" / "train", ignore_errors=True)  # nothing to resume or reuse
            seconds, _ = run_timed([*snakemake, f"results/train/{name}/best.pt"], cwd=workdir)
            workflow_times.append(seconds)
            # The same device and dataloader workers as the job had (workers follow its cores when unset).
            trained = json.loads((workdir / "results" / "train" / name / "train.json").read_text())
            used = {**run.train_args(), "workers": trained["workers"]}
            yolo = yolo_command(run.model, dataset, used, trained["device"], Path(scratch) / "yolo")
            shutil.rmtree(Path(scratch) / "yolo", ignore_errors=True)
            seconds, _ = run_timed(yolo, cwd=Path(scratch), env=environment)
            yolo_times.append(seconds)

    workflow, alone = median(workflow_times), median(yolo_times)
    rows = [
        {
            "configuration": name,
            "epochs": args.epochs,
            "workflow_s": round(workflow, 1),
            "yolo_train_s": round(alone, 1),
            "overhead_s": round(workflow - alone, 1),
            "ratio": round(workflow / alone, 3),
            "goal": "ratio <= 1.05",
        }
    ]
    notes = [
        f"median of {args.repeats} alternating runs each (spread: workflow {min(workflow_times):.1f}-"
        f"{max(workflow_times):.1f} s, yolo train {min(yolo_times):.1f}-{max(yolo_times):.1f} s); all runs (s): "
        f"workflow {[round(t, 1) for t in workflow_times]}, yolo train {[round(t, 1) for t in yolo_times]}",
        f"yolo command: {' '.join(yolo[1:4])} ... {yolo[-4]} (the job's arguments, device and workers)",
    ]
    report("training_overhead", rows, notes)


if __name__ == "__main__":
    main()
