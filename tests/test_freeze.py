"""Frozen layers stay frozen: the workflow's own training code, with `freeze: backbone`, on YOLO11."""

import logging

import pytest
import torch

from campaign.core.configurations import expand_campaign
from campaign.core.yolo_env import prepare_ultralytics
from campaign.dataset.synthetic import DEMO_OBJECTS, write_yolo_dataset
from campaign.training.run_folder import TrainingFolder
from campaign.training.trainer import train_model

pytestmark = pytest.mark.slow  # two short trainings


def network_weights(checkpoint) -> dict:
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return (saved.get("ema") or saved["model"]).state_dict()


def test_freeze_backbone_keeps_yolo11_s_first_11_modules_bit_for_bit(tmp_path):
    prepare_ultralytics(str(tmp_path / "settings"))
    from ultralytics.nn.tasks import DetectionModel

    data = write_yolo_dataset(tmp_path / "data", DEMO_OBJECTS, 16, seed=1, size=(96, 96))
    start = tmp_path / "start.pt"
    # In half precision, as Ultralytics saves every checkpoint (and so compares bit for bit below).
    torch.save({"model": DetectionModel("yolo11n.yaml", nc=len(DEMO_OBJECTS), verbose=False).half()}, start)
    # Enough optimizer steps in two short epochs: one per batch (nbs = batch), no warm-up.
    settings = {"nbs": 8, "warmup_epochs": 0, "val": False, "plots": False}
    defaults = {"model": "yolo11n", "batch": 8, "imgsz": 64, "epochs": 2, "workers": 0, "args": settings}
    (run,) = expand_campaign({"defaults": {**defaults, "freeze": "backbone"}}).values()
    assert run.name == "yolo11n_b8_img64_freeze11" and run.train_args()["freeze"] == 11
    folder = TrainingFolder(tmp_path / "train")
    train_model(run.model, data, folder, run.train_args(), "key", "cpu", start, logging.getLogger("test"))
    before, after = network_weights(start), network_weights(folder.last_checkpoint)
    layer = {key: int(key.split(".")[1]) for key in before}
    unchanged = {key for key in before if after[key].equal(before[key])}
    backbone = {key for key in before if layer[key] < 11}
    assert backbone <= unchanged, sorted(backbone - unchanged)[:5]  # running statistics included
    head = [key for key in before if layer[key] >= 11 and key.endswith(".weight")]
    assert sum(key not in unchanged for key in head) > len(head) / 2, "the head trained"
