"""A bad config stops the workflow before any job, with one clear message."""

import copy
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tiny_campaign import ROOT, TINY, snakemake

pytestmark = pytest.mark.slow  # one Snakemake run per bad config


def failing(tmp_path, config, *args):
    result = snakemake(tmp_path, "-n", *args, config=config, check=False)
    assert result.returncode != 0
    assert not (tmp_path / "results").exists(), "a job ran despite the bad config"
    return result.stdout + result.stderr


def test_unknown_hyperparameter_set_names_the_key_and_allowed_values(tmp_path):
    config = copy.deepcopy(TINY)
    config["campaign"]["defaults"]["hyp"] = "scratch-huge"
    message = failing(tmp_path, config)
    assert "scratch-huge" in message and "scratch-low" in message and "hyp" in message
    assert f"(the campaign's config file: {tmp_path / 'config.yaml'})" in message


def test_missing_pretrained_file_is_named_with_what_to_do(tmp_path):
    config = copy.deepcopy(TINY)
    config["weights"] = {"yolov8n": "weights/yolov8n.pt"}
    message = failing(tmp_path, config)
    assert "weights.yolov8n" in message and "weights/yolov8n.pt" in message
    assert "Nothing is downloaded at run time" in message and "campaign fetch-weights" in message


def test_missing_raw_folder_is_named(tmp_path):
    config = copy.deepcopy(TINY)
    config["dataset"]["raw"] = str(tmp_path / "nowhere")
    assert "dataset.raw" in failing(tmp_path, config)


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("batch", 0, "campaign.defaults.batch: 0 is out of range (must be at least 1)"),
        ("imgsz", 100, "campaign.defaults.imgsz: 100 is not a multiple of 32 (the nearest: 96 or 128)"),
        ("model", "yolov9n", "campaign.defaults.model: 'yolov9n' is not allowed (did you mean yolov8n or yolov5n"),
    ],
)
def test_out_of_range_values_are_rejected(tmp_path, key, value, expected):
    config = copy.deepcopy(TINY)
    config["campaign"]["defaults"][key] = value
    assert f"Invalid configuration: {expected}" in failing(tmp_path, config)


def test_one_config_file_is_one_campaign(tmp_path):
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(TINY))
    message = failing(tmp_path, TINY, "--configfile", str(tmp_path / "config.yaml"), str(tmp_path / "other.yaml"))
    assert "Invalid configuration: --configfile was given 2 files" in message


def test_nested_command_line_values_are_typed_and_checked(tmp_path):
    typed = snakemake(
        tmp_path, "-n", "--config", "campaign={defaults: {epochs: 2}, matrix: {freeze: [0]}}", config=TINY
    )
    assert re.search(r"^train\s+1$", typed.stdout, flags=re.M), typed.stdout
    message = failing(tmp_path, TINY, "--config", "campaign={defaults: {batch: 0.5}}")
    assert "Invalid configuration: campaign.defaults.batch: 0.5 is a decimal number, not a whole number" in message


def test_a_tab_in_the_default_config_file_is_named_with_its_line(tmp_path):
    text = (ROOT / "config.yaml").read_text().replace("  defaults:\n    ", "  defaults:\n\t", 1)
    (tmp_path / "config.yaml").write_text(text)
    line = text[: text.index("\t")].count("\n") + 1
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    message = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"Invalid configuration: config.yaml line {line}, column 1: found character '\\t'" in message
    assert "indent with spaces, not tabs" in message


def test_lint_is_clean_on_the_default_config():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr, (
        result.stdout + result.stderr
    )


def test_a_typo_in_a_detect_configuration_names_the_closest(tmp_path):
    config = copy.deepcopy(TINY)
    config["detect"]["configs"] = ["yolov8n_b16_img64_freez0"]
    message = failing(tmp_path, config)
    assert "detect.configs[0]" in message and "not one of the campaign's 2 configurations" in message
    assert "'yolov8n_b16_img64_freeze0'" in message


def test_a_target_of_an_unknown_configuration_is_a_clear_error(tmp_path):
    result = snakemake(tmp_path, "-n", "results/train/yolov8n_b16_img64_freez0/best.pt", config=TINY, check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0
    assert "'yolov8n_b16_img64_freez0' is not one of the campaign's 2 configurations" in message


def test_a_bad_upload_is_the_first_thing_on_screen_before_any_job(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(ROOT / "demo" / "raw" / "alpha", raw / "alpha")
    (raw / "alpha" / "classes.txt").write_text("lunettes\nlentils\nring\n")
    (raw / "late").mkdir()
    config = copy.deepcopy(TINY)
    config["dataset"] = {"raw": str(raw), "classes": ["glasses", "lentils", "ring"]}
    message = failing(tmp_path, config)
    shown = [line for line in message.splitlines() if line.strip() and "workflow specific profile" not in line]
    assert shown[0].startswith("WorkflowError") and shown[1].startswith("Invalid upload")
    assert "group late: the folder" in message and "is empty" in message
    assert "group alpha: 'lunettes'" in message and "    alpha: {lunettes: CLASS}" in message


def test_boxes_without_area_cannot_be_kept(tmp_path):
    config = copy.deepcopy(TINY)
    config["dataset"]["min_box_px"] = 0
    assert "min_box_px" in failing(tmp_path, config)


def test_an_emulated_gpu_smaller_than_any_training_needs_is_rejected(tmp_path):
    config = copy.deepcopy(TINY)
    config["gpu"] = {"emulate_memory_mb": 100}
    message = failing(tmp_path, config)
    assert "emulate_memory_mb" in message and "256" in message


def test_a_file_name_that_is_not_utf8_stops_the_plan_without_a_traceback(tmp_path):
    raw = tmp_path / "upload"
    shutil.copytree(ROOT / "demo" / "raw" / "alpha", raw / "alpha")
    with open(os.fsencode(raw / "alpha") + b"/caf\xe9.jpg", "wb") as stream:
        stream.write(b"not read")
    (raw / "alpha" / "loop").symlink_to(raw / "alpha" / "loop")
    config = copy.deepcopy(TINY)
    config["dataset"]["raw"] = str(raw)
    config["dataset"]["class_map"] = {}
    workdir = tmp_path / "work"
    workdir.mkdir()
    message = failing(workdir, config)
    assert "Traceback" not in message
    assert "alpha/caf\\xe9.jpg: the file name is not UTF-8 text: rename it" in message
    assert "alpha/loop: a link that leads back to itself: remove the link" in message


def test_a_group_without_class_names_is_sent_to_the_campaign_s_own_config_file(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(ROOT / "demo" / "raw" / "delta", raw / "delta")  # numeric ids, named only by a class_map
    config = copy.deepcopy(TINY)
    config["dataset"] = {"raw": str(raw), "classes": ["glasses", "lentils", "ring"]}
    (tmp_path / "course.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n"]
    result = subprocess.run([*command, "--configfile", "course.yaml"], cwd=tmp_path, capture_output=True, text=True)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and "Add dataset.class_map.delta to the campaign's config file" in message
    assert f"(the campaign's config file: {tmp_path / 'course.yaml'})" in message and "config.yaml" not in message
