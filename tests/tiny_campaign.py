"""The tests' own campaigns and how they run the real workflow (a `snakemake` subprocess).

Snakemake runs in a subprocess (not through its Python API) because
Ultralytics turns TensorBoard logging off when it sees pytest imported.

The campaigns are files under tests/configs: TINY (tiny.yaml) is the cheapest
campaign that runs every rule, and learns nothing; LEARNING (learning.yaml)
starts from a checkpoint that already detects the demo's objects, so its
evaluations give figures a wrong split, size or set of weights would change.
That checkpoint is SCRATCH's (scratch.yaml): yolov8n trained from random
weights by the workflow itself, once per test session.
"""

import copy
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from campaign.core.configurations import expand_campaign
from campaign.core.layout import EVAL_METRICS, TRAINED_WEIGHTS, result_path
from campaign.planning.resolved import ResolvedCampaign, resolve_campaign

ROOT = Path(__file__).resolve().parents[1]


def load_config(name: str) -> dict:
    """A test campaign from tests/configs/<name>.yaml, its upload and video paths made absolute."""
    config = yaml.safe_load((ROOT / "tests" / "configs" / f"{name}.yaml").read_text())
    config["dataset"]["raw"] = str(ROOT / config["dataset"]["raw"])
    if "detect" in config:
        config["detect"]["sources"] = [str(ROOT / source) for source in config["detect"]["sources"]]
    return config


TINY = load_config("tiny")
LEARNING = load_config("learning")
SCRATCH = load_config("scratch")
SCRATCH_CONFIG = "yolov8n_b16_img96_freeze0"
# What learn_checkpoint asks the workflow for: the trained configuration's metrics on the validation split.
SCRATCH_METRICS = result_path(EVAL_METRICS, cfg=SCRATCH_CONFIG, split="val")

# Below it, an evaluation has measured a network that detects nothing (a fresh one scores about 0.0001).
LEARNED_MAP50_FLOOR = 0.2


def workflow_env() -> dict[str, str]:
    """This environment without PYTEST_CURRENT_TEST: Ultralytics skips TensorBoard when it sees it."""
    return {key: value for key, value in os.environ.items() if key != "PYTEST_CURRENT_TEST"}


def snakemake(workdir: Path, *args: str, config: dict | None = None, check: bool = True, timeout: float = 1500):
    """Run the workflow; a run that hangs past `timeout` seconds is killed with its jobs and fails the test."""
    configfile = workdir / "config.yaml"
    if config is not None:
        configfile.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir)]
    command += ["--configfile", str(configfile), *args]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workdir,
        env=workflow_env(),
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"{' '.join(command)} hung for {timeout} s:\n{stdout[-3000:]}\n{stderr[-3000:]}") from None
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def planned_jobs(workdir: Path, config: dict) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry-run would run."""
    from campaign.planning.plan import dry_run_jobs

    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    jobs = dry_run_jobs(["-d", str(workdir), "--configfile", str(workdir / "config.yaml")])
    return [(job["rule"], job["wildcards"]) for job in jobs]


def learn_checkpoint(workdir: Path) -> Path:
    """SCRATCH run by the workflow up to its validation metrics; its trained weights become LEARNING's start.

    Returns the folder with the checkpoint (yolov8n-demo.pt) and its SHA256SUMS;
    the campaign's results stay in `workdir` (SCRATCH_METRICS is their validation).
    """
    snakemake(workdir, "--cores", "2", str(SCRATCH_METRICS), config=SCRATCH)
    weights = workdir / "weights"
    weights.mkdir()
    checkpoint = weights / "yolov8n-demo.pt"
    shutil.copyfile(workdir / result_path(TRAINED_WEIGHTS, cfg=SCRATCH_CONFIG), checkpoint)
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    (weights / "SHA256SUMS").write_text(f"{digest}  {checkpoint.name}\n")
    return weights


def install_learned_weights(learned: Path, workdir: Path) -> None:
    """Copy the learned checkpoint and its checksum where LEARNING names them."""
    (workdir / "weights").mkdir(parents=True, exist_ok=True)
    for name in ("yolov8n-demo.pt", "SHA256SUMS"):
        shutil.copyfile(learned / name, workdir / "weights" / name)


def resolved(campaign: dict, results: Path, **sections: dict) -> ResolvedCampaign:
    """A campaign matrix resolved as the workflow resolves it, on TINY's upload, its models pretrained by the workflow.

    `sections`: config sections besides those (evaluation, speed, study, ...), as a config file would give them.
    """
    models = sorted({run.model for run in expand_campaign(campaign).values()})
    config = {
        "campaign": copy.deepcopy(campaign),
        "dataset": copy.deepcopy(TINY["dataset"]),
        "pretrain": {"models": models},
        **copy.deepcopy(sections),
    }
    return resolve_campaign(config, "test-campaign.yaml", results)
