"""One campaign resolved once: what the workflow and every command see of a config."""

import copy
import json
import subprocess
import sys

import pytest

from campaign.core import layout
from campaign.core.configurations import ConfigError
from campaign.planning.resolved import load_campaign, resolve_campaign
from tiny_campaign import ROOT, TINY

MATRIX = {
    "defaults": {"model": "yolov8n", "batch": 16, "imgsz": 64, "freeze": 0, "epochs": 1},
    "matrix": {"batch": [8, 16], "freeze": [0, 10]},
    "extra": [{"model": "yolov8s", "imgsz": 96}],
}


def config(**changes):
    """TINY with the MATRIX campaign, every configuration pretrained by the workflow, and `changes` by section."""
    base = copy.deepcopy(TINY) | {"campaign": copy.deepcopy(MATRIX)}
    base["pretrain"]["models"] = ["yolov8n", "yolov8s"]
    base["detect"]["configs"] = ["yolov8s_b16_img96_freeze0"]
    for section, values in changes.items():
        base[section] = values if not isinstance(values, dict) else {**base.get(section, {}), **values}
    return base


def test_the_schemas_defaults_are_filled_and_the_key_order_means_nothing(tmp_path):
    written = config()
    reordered = {key: copy.deepcopy(written[key]) for key in reversed(list(written))}
    one, other = resolve_campaign(written, "a.yaml", tmp_path), resolve_campaign(reordered, "b.yaml", tmp_path)
    assert json.dumps(one.config) == json.dumps(other.config)  # the same keys in the same order
    assert one.config["evaluation"]["splits"] == ["val", "test"] and one.config["gpu"]["pack"] is False
    assert list(one.configs) == list(other.configs) and len(one.configs) == 5


def test_each_configurations_jobs_after_training_and_the_files_that_stand_for_them(tmp_path):
    campaign = resolve_campaign(config(speed={"formats": ["pytorch", "onnx"]}, study={"configs": []}), "c", tmp_path)
    # One network timing per model and size (batch and freeze do not change the network).
    assert set(campaign.timed_by.values()) == {"yolov8n_b16_img64_freeze0", "yolov8s_b16_img96_freeze0"}
    jobs = campaign.jobs_after_training("yolov8n_b8_img64_freeze10")
    assert jobs["latency"] == [] and jobs["detect"] == [] and jobs["imgsz_study"] == [{"cfg": jobs["speed"][0]["cfg"]}]
    assert jobs["export"] == [{"cfg": "yolov8n_b8_img64_freeze10", "format": "onnx"}]
    stems = campaign.benchmark_stems()["yolov8s_b16_img96_freeze0"]
    assert stems["detect"] == ["yolov8s_b16_img96_freeze0_table"] and stems["latency"] == ["yolov8s_b16_img96_freeze0"]
    assert stems["evaluate"] == ["yolov8s_b16_img96_freeze0_val", "yolov8s_b16_img96_freeze0_test"]
    outputs = campaign.configuration_outputs(["yolov8s_b16_img96_freeze0"])
    assert layout.TRAINED_WEIGHTS.format(cfg="yolov8s_b16_img96_freeze0") in outputs
    assert layout.DETECTION_SHEET.format(cfg="yolov8s_b16_img96_freeze0", source="table") in outputs
    assert layout.EVAL_INTERVALS.format(cfg="yolov8s_b16_img96_freeze0", split="test") in outputs
    assert not any("/export/" in path or "/latency/" in path for path in outputs)  # reached through speed


def test_a_shard_and_only_select_this_runs_configurations(tmp_path):
    halves = [resolve_campaign(config(shard=f"{index}/2"), "c", tmp_path).selected for index in (1, 2)]
    assert sorted(halves[0] + halves[1]) == sorted(resolve_campaign(config(), "c", tmp_path).configs)
    assert not set(halves[0]) & set(halves[1])
    taken = resolve_campaign(config(shard="1/2", only=halves[0][:1]), "c", tmp_path)
    assert taken.selected == halves[0][:1] and taken.part == "shard 1/2"
    with pytest.raises(ConfigError, match=r"^only: yolov8x_b1_img64_freeze0 are not configurations"):
        resolve_campaign(config(only=["yolov8x_b1_img64_freeze0"]), "c", tmp_path)


def test_names_and_folders_the_config_gives_are_checked_with_their_key(tmp_path):
    with pytest.raises(ConfigError, match=r"^detect\.configs\[0\]: 'yolov8n_b99_img64_freeze0' is not one of"):
        resolve_campaign(config(detect={"configs": ["yolov8n_b99_img64_freeze0"]}), "c", tmp_path)
    with pytest.raises(ConfigError, match=r"^dataset\.raw: folder .* does not exist"):
        resolve_campaign(config(dataset={"raw": str(tmp_path / "nowhere")}), "c", tmp_path)
    with pytest.raises(ConfigError, match=r"^dataset\.freeze: there is no cleaned dataset to keep"):
        resolve_campaign(config(dataset={"freeze": True}), "c", tmp_path)


def test_a_command_sees_the_jobs_the_workflow_plans(tmp_path):
    """`snakemake -n` on the config and the resolved campaign's targets: the same trainings and timings."""
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(config()))
    campaign = load_campaign(path, tmp_path / "results")
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path)]
    dry_run = subprocess.run(
        [*command, "--configfile", str(path), "-n", "--quiet", "rules"], capture_output=True, text=True, check=True
    )
    counts = dict(line.split() for line in dry_run.stdout.splitlines() if len(line.split()) == 2)
    latency = sum(len(campaign.jobs_after_training(name)["latency"]) for name in campaign.configs)
    assert int(counts["train"]) == len(campaign.configs) and int(counts["latency"]) == latency == 2
    assert int(counts["detect"]) == len(campaign.detect_configs) * len(campaign.detect_sources)


def test_a_shards_first_real_run_splits_for_servers_with_the_gpus_it_was_given(tmp_path):
    layout.split_list("train", tmp_path).parent.mkdir(parents=True)
    layout.split_list("train", tmp_path).write_text("")  # `prepare` has made the shared data
    # With gpu.pack two trainings share a GPU: --resources gpu=8 counts shares, so 4 GPUs.
    packed = config(shard="1/2", gpu={"pack": True, "max_share": 2})
    resolve_campaign(packed, "c", tmp_path, record_shards=True, gpu_resource=8)
    record = json.loads((tmp_path / "plan" / "shards.json").read_text())
    assert record["basis"] == "expected training cost from the config, on 2 server(s) of 4 GPU(s)"
