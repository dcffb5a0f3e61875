"""The tests' own campaigns and how they run the real workflow (a `snakemake` subprocess).

Snakemake runs in a subprocess (not through its Python API) because
Ultralytics turns TensorBoard logging off when it sees pytest imported.

TINY is the cheapest campaign that runs every rule: its pretraining and its
single epoch teach nothing, so every metric it gives is about 0. Tests of
planning, resuming and errors use it. LEARNING starts from a checkpoint that
already detects the demo's objects (tests/learned_checkpoint.py, made once per
test session, as a real campaign starts from COCO weights): its evaluations
give figures a wrong split, size or set of weights would change.
"""

import copy
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "dataset": {
        "raw": str(ROOT / "demo" / "raw"),
        "classes": ["glasses", "lentils", "ring"],
        "class_map": {"delta": {0: "lentils", 1: "glasses", 2: "ring"}},
    },
    "pretrain": {"models": ["yolov8n"], "images": 24, "epochs": 1, "imgsz": 64, "batch": 8},
    "campaign": {
        "defaults": {"model": "yolov8n", "batch": 16, "imgsz": 64, "freeze": 0, "epochs": 1, "workers": 0},
        "matrix": {"freeze": [0, 10]},
    },
    "speed": {"batch": [1, 4], "cpu_repeats": 1, "warmup": 1, "images": 8},
    "study": {"imgsz": [32, 64]},
    "detect": {"configs": ["yolov8n_b16_img64_freeze0"], "sources": [str(ROOT / "demo" / "videos" / "table.mp4")]},
}

# Relative to the campaign's folder, where the tests copy the learned checkpoint.
LEARNED_WEIGHTS = {"weights": {"yolov8n": "weights/yolov8n-demo.pt"}, "weights_checksums": "weights/SHA256SUMS"}
LEARNING = copy.deepcopy(TINY)
LEARNING.update(LEARNED_WEIGHTS)
LEARNING["pretrain"] = {"models": []}
# SGD at a small rate, no warm-up: a fresh AdamW moves every weight by its rate at each step, and one short epoch
# of that undoes the checkpoint (test mAP50 0.57 -> 0.07); this fine-tunes it (about 0.5).
LEARNING["campaign"]["defaults"]["args"] = {"optimizer": "SGD", "lr0": 0.001, "warmup_epochs": 0}
# 96 px: the size the checkpoint learnt at (at 64 px the demo's objects are a few pixels wide).
LEARNING["campaign"]["defaults"]["imgsz"] = 96
LEARNING["study"] = {"imgsz": [64, 96]}
LEARNING["detect"]["configs"] = ["yolov8n_b16_img96_freeze0"]

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
    from campaign.plan import dry_run_jobs

    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    jobs = dry_run_jobs(["-d", str(workdir), "--configfile", str(workdir / "config.yaml")])
    return [(job["rule"], job["wildcards"]) for job in jobs]


def learn_checkpoint(workdir: Path) -> Path:
    """The demo's data cleaned and split by the workflow, and yolov8n trained on its training split.

    Returns the folder with the checkpoint and its SHA256SUMS.
    """
    snakemake(workdir, "--cores", "2", "--until", "split_dataset", config=TINY)
    weights = workdir / "weights"
    dataset = workdir / "results" / "dataset" / "dataset.yaml"
    subprocess.run(
        [sys.executable, str(ROOT / "tests" / "learned_checkpoint.py"), str(dataset), str(weights)],
        capture_output=True,
        check=True,
        env=workflow_env(),
    )
    return weights


def install_learned_weights(learned: Path, workdir: Path) -> None:
    """Copy the learned checkpoint and its checksum where LEARNING names them."""
    (workdir / "weights").mkdir(parents=True, exist_ok=True)
    for name in ("yolov8n-demo.pt", "SHA256SUMS"):
        shutil.copyfile(learned / name, workdir / "weights" / name)
