"""Files a rule hands its script, paired with their configurations, and the training folder's side files."""

from pathlib import Path

import pytest

from campaign.core.layout import by_config, by_config_and_split
from campaign.training.run_folder import TrainingFolder


def test_files_are_paired_with_the_configuration_each_names():
    names = ["yolov8n_b16", "yolov8n_b16_seed1"]
    files = ["results/train/yolov8n_b16/train.json", "results/train/yolov8n_b16_seed1/train.json"]
    assert by_config(files, names) == {name: Path(path) for name, path in zip(names, files)}
    speed = ["results/speed/yolov8n_b16.csv", "results/speed/yolov8n_b16_seed1.csv"]
    assert by_config(speed, names)["yolov8n_b16_seed1"] == Path(speed[1])


def test_a_list_out_of_order_is_an_error_not_a_mix_up():
    names = ["yolov8n_b16", "yolov8n_b16_seed1"]
    with pytest.raises(
        ValueError, match="results/speed/yolov8n_b16_seed1.csv is not a file of configuration yolov8n_b16"
    ):
        by_config(["results/speed/yolov8n_b16_seed1.csv", "results/speed/yolov8n_b16.csv"], names)
    with pytest.raises(ValueError, match="1 files for 2 configurations"):
        by_config(["results/speed/yolov8n_b16.csv"], names)


def test_files_by_configuration_then_split():
    files = [f"results/eval/{name}/{split}/metrics.json" for name in ("a", "b") for split in ("val", "test")]
    paired = by_config_and_split(files, ["a", "b"], ["val", "test"])
    assert paired["b", "val"] == Path("results/eval/b/val/metrics.json")
    with pytest.raises(ValueError, match="not a file of configuration a on test"):
        by_config_and_split(files, ["a", "b"], ["test", "val"])


def test_a_pretraining_keeps_its_side_files_under_its_own_run_name():
    training, pretraining = TrainingFolder.of("cfg"), TrainingFolder.around(Path("results/pretrain/yolov8n_run"))
    assert training.attempts == Path("results/train/cfg/run.attempts.jsonl")
    assert pretraining.attempts == Path("results/pretrain/yolov8n_run.attempts.jsonl")
    assert pretraining.live_monitor == Path("results/pretrain/yolov8n_run.monitor/samples.csv")
