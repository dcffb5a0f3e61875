"""What reruns and why, with its cost: the plan's reasons in a teacher's words, and a dataset kept frozen."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from campaign.dataset.upload_changes import UploadChanges
from campaign.planning.rerun_reasons import (
    CODE,
    DATA,
    MISSING,
    NEW,
    WEIGHTS,
    group_by_reason,
    reasons_table,
    training_reason,
)
from campaign.training.run_folder import TrainingFolder
from tiny_campaign import SCRATCH, SCRATCH_CONFIG, workflow_env


def test_snakemakes_reasons_are_said_as_the_teacher_s_causes(tmp_path):
    assert training_reason("a", "Missing output files: results/train/a/best.pt", tmp_path) == NEW
    folder = TrainingFolder.of("b", tmp_path)
    folder.run.mkdir(parents=True)
    assert training_reason("b", "Missing output files: results/train/b/train.json", tmp_path) == MISSING
    said = "Input files updated by another job: results/dataset/train.txt, results/dataset/dataset.yaml"
    assert training_reason("a", said, tmp_path) == DATA
    assert training_reason("a", "Updated input files: results/pretrain/yolov8n.pt", tmp_path) == WEIGHTS
    assert training_reason("a", "Params have changed since last execution", tmp_path) == CODE
    assert training_reason("a", "Code has changed since last execution", tmp_path) == CODE


def test_each_reason_is_counted_with_its_gpu_hours(tmp_path):
    data = "Input files updated by another job: results/dataset/train.txt"
    trainings = {"n_b16": data, "s_b16": data, "m_b16": "Missing output files: results/train/m_b16/best.pt"}
    groups = group_by_reason(trainings, {"n_b16": 1.5, "s_b16": 2.25, "m_b16": 4.0}, tmp_path)
    assert [(g.reason, g.names, g.hours) for g in groups] == [(NEW, ["m_b16"], 4.0), (DATA, ["n_b16", "s_b16"], 3.75)]
    table = reasons_table(groups, "1 image added in group alpha")
    assert "  data changed                   2   3.75 GPU-h  n_b16, s_b16" in table
    assert "since the dataset was cleaned: 1 image added in group alpha" in table
    assert "? GPU-h" in reasons_table(group_by_reason(trainings, None, tmp_path))


def test_upload_changes_are_said_by_kind_and_group():
    changes = UploadChanges(
        added=["alpha/images/IMG_0100.jpg", "alpha/labels/IMG_0100.txt"],
        changed=["bravo/data.yaml"],
        removed=["charlie/a.jpg", "delta/b.jpg"],
    )
    assert changes.describe() == (
        "1 image and 1 other file (labels, lists) added in group alpha; 1 other file (labels, lists) changed in "
        "group bravo; 2 images removed in groups charlie, delta"
    )


def plan(workdir: Path, configfile: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "campaign", "plan", "--configfile", str(configfile)],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=workflow_env(),
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_a_late_photo_is_named_with_what_it_costs_and_a_frozen_dataset_keeps_the_trainings(tmp_path, scratch_campaign):
    import yaml

    workdir = tmp_path / "campaign"
    shutil.copytree(scratch_campaign, workdir, symlinks=True)
    raw = tmp_path / "raw"
    shutil.copytree(SCRATCH["dataset"]["raw"], raw)  # times kept: older than the cleaned dataset
    config = {**SCRATCH, "dataset": {**SCRATCH["dataset"], "raw": str(raw)}}
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    # A late photo in group alpha, with its label.
    shutil.copyfile(raw / "alpha/images/IMG_0001.jpg", raw / "alpha/images/IMG_0100.jpg")
    shutil.copyfile(raw / "alpha/labels/IMG_0001.txt", raw / "alpha/labels/IMG_0100.txt")

    said = plan(workdir, configfile)
    assert "  data changed                   1" in said and SCRATCH_CONFIG in said
    assert "since the dataset was cleaned: 1 image and 1 other file (labels, lists) added in group alpha" in said

    config["dataset"]["freeze"] = True
    configfile.write_text(yaml.safe_dump(config))
    said = plan(workdir, configfile)
    assert "No training to run again." in said
    assert "is kept; waiting for the next campaign: 1 image and 1 other file (labels, lists) added in group alpha" in (
        said
    )
    assert "clean_dataset" not in said
