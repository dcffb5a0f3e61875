"""Every config value is checked wherever it is written, and a name says exactly what trains.

Parse-time tests (no Snakemake run): each wrong value stops with one line
that starts with the key path it came from and says what to write instead.
"""

import copy
import re

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from campaign.core.config_file import check_one_campaign, read_config_file, retype_command_line_values
from campaign.core.config_schema import check_config
from campaign.core.configurations import ConfigError, expand_campaign
from campaign.dataset.upload_checks import upload_errors
from campaign.dataset.uploads import discover_upload
from campaign.evaluation.video import expand_sources
from tiny_campaign import ROOT, TINY


def problem(config: dict) -> str:
    """The one-line message of a config the workflow refuses (check, then expansion, as common.smk does)."""
    with pytest.raises(ConfigError) as caught:
        check_config(config)
        expand_campaign(config["campaign"])
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def with_campaign(section: str, value) -> dict:
    config = copy.deepcopy(TINY)
    if isinstance(value, dict) and section in ("defaults", "matrix"):
        config["campaign"].setdefault(section, {}).update(value)
    else:
        config["campaign"][section] = value
    return config


@pytest.mark.parametrize(
    "section,value,expected",
    [
        (
            "matrix",
            {"model": ["yolov5mu"]},
            "campaign.matrix.model[0]: 'yolov5mu' is not allowed (did you mean yolov5m",
        ),
        ("matrix", {"model": ["YOLOv8N"]}, "campaign.matrix.model[0]: 'YOLOv8N' is not allowed (did you mean yolov8n"),
        (
            "matrix",
            {"model": ["yolov8n.pt"]},
            "campaign.matrix.model[0]: 'yolov8n.pt' is not allowed (did you mean yolov8n",
        ),
        ("matrix", {"freeze": [[0, 1, 2]]}, "campaign.matrix.freeze[0]: [0, 1, 2] is a list, not a whole number"),
        ("matrix", {"imgsz": [64, [320, 256]]}, "campaign.matrix.imgsz[1]: [320, 256] is a list, not a whole number"),
        ("matrix", {"batch": ["16"]}, "campaign.matrix.batch[0]: '16' is text, not a whole number"),
        (
            "matrix",
            {"hyp": ["scratch-lo"]},
            "campaign.matrix.hyp[0]: 'scratch-lo' is not allowed (did you mean scratch-low",
        ),
        ("matrix", {"batch": [16, 0]}, "campaign.matrix.batch[1]: 0 is out of range (must be at least 1)"),
        ("matrix", {"batch": [-1]}, "campaign.matrix.batch[0]: -1 is out of range (must be at least 1)"),
        ("matrix", {"batch": [0.7]}, "campaign.matrix.batch[0]: 0.7 is a decimal number, not a whole number"),
        ("matrix", {"batch": [16.0]}, "campaign.matrix.batch[0]: 16.0 is written as a decimal; write 16"),
        ("matrix", {"batch": [True]}, "campaign.matrix.batch[0]: True is true/false, not a whole number"),
        ("matrix", {"imgsz": [100]}, "campaign.matrix.imgsz[0]: 100 is not a multiple of 32 (the nearest: 96 or 128)"),
        ("matrix", {"imgsz": [128.0]}, "campaign.matrix.imgsz[0]: 128.0 is written as a decimal; write 128"),
        ("matrix", {"epochs": [0]}, "campaign.matrix.epochs[0]: 0 is out of range (must be at least 1)"),
        ("matrix", {"freeze": [-1]}, "campaign.matrix.freeze[0]: -1 is out of range (must be at least 0)"),
        ("matrix", {"pretrained": ["false"]}, "campaign.matrix.pretrained[0]: 'false' is text, not true or false"),
        ("matrix", {"gpus": [-1]}, "campaign.matrix.gpus[0]: -1 is out of range (must be at least 0)"),
        ("matrix", {"replicates": [0]}, "campaign.matrix.replicates[0]: 0 is out of range (must be at least 1)"),
        ("matrix", {"batch": [16, 8, 16]}, "campaign.matrix.batch: 16 is listed twice; list each value once"),
        ("matrix", {"epoch": [3]}, "campaign.matrix.epoch: not a key here (did you mean epochs?"),
        ("defaults", {"batch": 16.0}, "campaign.defaults.batch: 16.0 is written as a decimal; write 16"),
        ("overrides", [{"match": {"freeze": 10}, "set": {"epochs": 0}}], "campaign.overrides[0].set.epochs: 0 is out"),
        ("extra", [{"model": "yolov8n", "imgsz": 100}], "campaign.extra[0].imgsz: 100 is not a multiple of 32"),
        ("matrix", {"freeze": [0, 30]}, "campaign.matrix.freeze[1]: freeze=30 would freeze all 23 layers of yolov8n"),
        (
            "matrix",
            {"freeze": [10], "pretrained": [False]},
            "campaign.matrix.freeze[0]: freeze=10 with pretrained=false (campaign.matrix.pretrained[0]) would freeze",
        ),
    ],
)
def test_every_campaign_value_is_checked_where_it_is_written(section, value, expected):
    assert problem(with_campaign(section, value)).startswith(expected)


@pytest.mark.parametrize("key", ["model", "batch", "imgsz", "freeze", "epochs", "seed", "hyp", "pretrained"])
def test_args_may_not_set_what_the_name_says(key):
    message = problem(with_campaign("defaults", {"args": {key: TINY["campaign"]["defaults"].get(key, 1)}}))
    assert message.startswith(f"campaign.defaults.args.{key}: {key} is part of what a configuration's name says")
    assert "set it as a campaign key" in message


@pytest.mark.parametrize("key", ["data", "project", "name", "exist_ok", "device", "resume"])
def test_args_may_not_set_what_the_workflow_sets(key):
    config = with_campaign("extra", [{"model": "yolov8n", "batch": 8, "args": {key: "x"}}])
    message = problem(config)
    assert (
        message
        == f"campaign.extra[0].args.{key}: the workflow sets {key} for every training itself; remove it from args"
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            {"optimizer": "adamw_typo"},
            "'adamw_typo' is not an optimizer Ultralytics builds (did you mean AdamW? it builds",
        ),
        ({"mosaic": 1.5}, "1.5 is out of range; Ultralytics takes mosaic between 0.0 and 1.0"),
        ({"lr0": -0.01}, "-0.01 is out of range; Ultralytics takes lr0 between 0.0 and 1.0"),
        ({"close_mosaic": 2.5}, "2.5 is not a whole number; Ultralytics takes one for close_mosaic"),
        ({"cos_lr": "yes"}, "'yes' is not true or false; Ultralytics takes a boolean for cos_lr"),
        ({"nbs": 0}, "0 is too small; Ultralytics takes nbs of at least 1"),
    ],
)
def test_args_are_checked_by_ultralytics_own_rules_before_anything_trains(args, said):
    key = next(iter(args))
    assert problem(with_campaign("defaults", {"args": args})).startswith(f"campaign.defaults.args.{key}: {said}")


def test_args_ultralytics_accepts_pass_as_written():
    config = with_campaign("defaults", {"args": {"optimizer": "sgd", "mosaic": 0.5, "lr0": 0.001, "cos_lr": True}})
    check_config(config)
    assert expand_campaign(config["campaign"])


def test_a_number_written_as_text_in_args_is_refused():
    message = problem(with_campaign("defaults", {"args": {"lr0": "1e-3"}}))
    assert message.startswith("campaign.defaults.args.lr0: '1e-3' is not a number, and Ultralytics expects one")


def test_the_same_training_under_two_names_is_an_error_naming_both():
    config = with_campaign("extra", [{"name": "baseline", "model": "yolov8n"}])
    message = problem(config)
    assert message.startswith("campaign.extra[0]: configuration 'baseline' trains exactly what ")
    assert "'yolov8n_b16_img64_freeze0'" in message


def test_excluding_every_configuration_is_said_as_such():
    config = with_campaign("exclude", [{"model": "yolov8n"}])
    config["campaign"]["overrides"] = [{"match": {"freeze": 10}, "set": {"epochs": 2}}]
    assert problem(config).startswith("campaign.exclude removes every configuration")


@pytest.mark.parametrize(
    "section,value,expected",
    [
        ("gpu", {"lock_dir": "leases"}, "gpu.lock_dir: 'leases' does not have the form ^/"),
        ("speed", {"batch": [1, 1]}, "speed.batch: 1 is listed twice"),
        # A median with its 10th-90th percentile spread needs a few timed calls.
        ("speed", {"cpu_repeats": 1}, "speed.cpu_repeats: 1 is out of range (must be at least 5)"),
        ("study", {"imgsz": [64, 64]}, "study.imgsz: 64 is listed twice"),
        ("detect", {"configs": ["a", "a"]}, "detect.configs: 'a' is listed twice"),
        (
            "gpu",
            {"devices": [{"index": 0}, {"index": 1}, {"index": 0}]},
            "gpu.devices[2].index: device 0 is already declared as gpu.devices[0]",
        ),
        ("campaign", {"defaults": {}, "matrx": {}}, "campaign.matrx: not a key here (did you mean matrix?"),
        ("evaluation", {"conf": 2}, "evaluation.conf: 2 is out of range (must be at most 1)"),
        ("gpu", {"pack": True, "max_share": 0}, "gpu.max_share: 0 is out of range (must be at least 1)"),
    ],
)
def test_other_sections_say_key_value_and_what_is_allowed(section, value, expected):
    config = copy.deepcopy(TINY)
    config[section] = value
    with pytest.raises(ConfigError) as caught:
        check_config(config)
    assert str(caught.value).startswith(expected)


def test_a_class_map_for_a_group_that_is_not_uploaded_is_named():
    groups = discover_upload(ROOT / "demo" / "raw")
    maps = {"delta": {0: "lentils", 1: "glasses", 2: "ring"}, "deltta": {0: "ring"}}
    problems = upload_errors(groups, ["glasses", "lentils", "ring"], maps, [], [])
    assert problems == ["dataset.class_map.deltta: 'deltta' is not a group of the upload (did you mean delta?)"]


def test_a_detect_source_without_video_or_image_is_refused(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("film the table")
    with pytest.raises(ConfigError, match=r"detect.sources\[0\]: '.*notes.txt' is neither a video nor an image"):
        expand_sources([str(notes)])
    folder = tmp_path / "videos"
    folder.mkdir()
    assert expand_sources([str(folder)]) == []  # nothing filmed yet: no job, no error
    (folder / "todo.txt").write_text("")
    with pytest.raises(ConfigError, match=r"detect.sources\[0\]: folder .* holds 1 file\(s\) but no video or image"):
        expand_sources([str(folder)])


def campaign_file(line: str) -> str:
    return f"campaign:\n  defaults:\n{line}\n    model: yolov8n\n"


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            campaign_file("    imgsz: 0640"),
            "line 3: campaign.defaults.imgsz (`imgsz: 0640`) is read by Snakemake (YAML 1.1) as 416",
        ),
        (
            campaign_file("    seed: 010"),
            "campaign.defaults.seed (`seed: 010`) is read by Snakemake (YAML 1.1) as 8 but by YAML 1.2 as 10",
        ),
        (
            campaign_file("    args: {lr0: 1e-3}"),
            "(`args: {lr0: 1e-3}`) is read by Snakemake (YAML 1.1) as '1e-3' but by YAML 1.2 as 0.001",
        ),
        (
            campaign_file("    pretrained: yes"),
            "campaign.defaults.pretrained (`pretrained: yes`) is read by Snakemake (YAML 1.1) as True",
        ),
        (
            campaign_file("    epochs: 3") + "  matrix: {batch: [8]}\n  matrix: {imgsz: [64]}\n",
            "line 6: key 'matrix' appears a second time",
        ),
        (
            campaign_file("\tepochs: 3"),
            "line 3, column 1: found character '\\t' that cannot start any token; indent with spaces, not tabs",
        ),
    ],
)
def test_a_config_file_read_two_ways_stops_at_the_line(tmp_path, text, expected):
    path = tmp_path / "campaign.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        read_config_file(path)
    assert str(caught.value).startswith(f"{path} ") and expected in str(caught.value)


def test_every_shipped_config_reads_the_same_both_ways():
    for path in [
        ROOT / "config.yaml",
        ROOT / "configs" / "course.yaml",
        *sorted((ROOT / "tests" / "configs").glob("*.yaml")),
    ]:
        config = read_config_file(path)
        check_config(config)
        assert expand_campaign(config["campaign"]), path


def test_nested_command_line_values_get_their_types():
    config = {"campaign": {"defaults": {"epochs": "3", "model": "yolov8n", "args": {"lr0": "1e-3", "cos_lr": "true"}}}}
    retype_command_line_values(
        config, {"campaign": {"defaults": {"epochs": "3", "args": {"lr0": "1e-3", "cos_lr": "true"}}}}
    )
    assert config["campaign"]["defaults"] == {"epochs": 3, "model": "yolov8n", "args": {"lr0": 0.001, "cos_lr": True}}


def test_a_second_config_file_is_refused():
    check_one_campaign(["configs/course.yaml"])
    with pytest.raises(ConfigError, match="--configfile was given 2 files .* Give one file"):
        check_one_campaign(["config.yaml", "configs/course.yaml"])


# Values a teacher might write for each matrix key: right ones, and mistakes.
VALID = {
    "model": ["yolov8n", "yolo11n", "yolov5s"],
    "batch": [1, 8, 16],
    "imgsz": [32, 64, 96],
    "freeze": [0, 3, 10],
    "epochs": [1, 2, 3],
    "hyp": ["default", "scratch-low"],
    "pretrained": [True, False],
    "seed": [0, 1, 2],
    "patience": [0, 5, 100],
    "replicates": [1, 2],
}
MISTAKES = {
    "model": ["yolov5mu", "YOLOv8N", "yolov8n.pt"],
    "batch": [0, -1, 0.7, 16.0, "16", True],
    "imgsz": [100, 128.0, [64, 64]],
    "freeze": [-1, 30, [0]],
    "epochs": [0, 2.5],
    "hyp": ["scratch-lo"],
    "pretrained": ["false", 1],
    "seed": [-1, "1"],
    "patience": [-5],
    "replicates": [0],
}
ARGS = [{}, {"lr0": 0.001}, {"cos_lr": True}]
WRONG_ARGS = [{"lr0": "1e-3"}, {"epochs": 5}, {"seed": 1}, {"data": "x.yaml"}, {"lr00": 0.1}]
NAME = re.compile(
    r"^(?P<model>yolo[v0-9]+[nsmlx])_b(?P<batch>\d+)_img(?P<imgsz>\d+)_freeze(?P<freeze>\d+)"
    r"(_ep(?P<epochs>\d+))?(_(?P<hyp>default|scratch-(?:low|med|high)))?(_(?P<pretrained>pretrained|scratch))?"
    r"(_pat(?P<patience>\d+))?(_seed(?P<seed>\d+))?$"
)


@st.composite
def campaigns(draw):
    """A campaign of right values, and in about half of them one mistake, put anywhere a value is written."""
    keys = draw(st.lists(st.sampled_from(sorted(VALID)), max_size=3, unique=True))
    matrix = {key: draw(st.lists(st.sampled_from(VALID[key]), min_size=1, max_size=3, unique=True)) for key in keys}
    defaults = {"model": "yolov8n", "batch": 16, "imgsz": 64, "freeze": 0, "epochs": 1}
    defaults["args"] = dict(draw(st.sampled_from(ARGS)))
    campaign = {"defaults": defaults, "matrix": matrix}
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(VALID)))
        campaign["overrides"] = [{"match": {"model": "yolov8n"}, "set": {key: draw(st.sampled_from(VALID[key]))}}]
    if draw(st.booleans()):
        campaign["extra"] = [{key: draw(st.sampled_from(VALID[key])) for key in ("model", "batch", "epochs")}]
    if draw(st.booleans()):
        place = draw(st.sampled_from(["matrix", "defaults", "overrides", "extra", "args"]))
        key = draw(st.sampled_from(sorted(MISTAKES)))
        mistake = draw(st.sampled_from(MISTAKES[key]))
        if place == "matrix":
            matrix.setdefault(key, []).append(mistake)
        elif place == "defaults":
            defaults[key] = mistake
        elif place == "overrides":
            campaign["overrides"] = [{"match": {"model": "yolov8n"}, "set": {key: mistake}}]
        elif place == "extra":
            campaign["extra"] = [{"model": "yolov8n", "batch": 4, key: mistake}]
        else:
            defaults["args"] = dict(draw(st.sampled_from(WRONG_ARGS)))
    return campaign


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(campaigns())
def test_any_campaign_either_stops_naming_a_key_or_names_match_arguments(campaign):
    config = {**copy.deepcopy(TINY), "campaign": campaign}
    try:
        check_config(config)
        configs = expand_campaign(config["campaign"])
    except ConfigError as error:
        event("stopped with a message")
        assert re.match(r"campaign\.(defaults|matrix|overrides|extra|exclude)\S*( |:)", str(error)), str(error)
        return
    event("planned")
    defaults = {**TINY["campaign"]["defaults"], "hyp": "default", "pretrained": True, "patience": 100, "seed": 0}
    for name, run in configs.items():
        parts = NAME.match(name)
        assert parts, name
        args = run.train_args()
        for key in ("batch", "imgsz", "freeze", "epochs", "seed", "patience"):
            shown = parts[key]
            value = getattr(run, key)
            assert type(value) is int and (args[key] or 0) == value, (name, key, args[key])
            assert int(shown) == value if shown is not None else value == defaults[key], (name, key)
        assert parts["model"] == run.model
        assert (parts["hyp"] or "default") == run.hyp
        assert (parts["pretrained"] != "scratch") == run.pretrained


def test_freeze_backbone_freezes_each_model_s_own_and_a_foreign_backbone_is_named():
    campaign = {
        "defaults": {"model": "yolov8n", "batch": 16, "imgsz": 64, "freeze": "backbone", "epochs": 1},
        "matrix": {"model": ["yolov8n", "yolo11n"]},
    }
    configs = expand_campaign(campaign)
    assert {name: run.freeze for name, run in configs.items()} == {
        "yolo11n_b16_img64_freeze11": 11,
        "yolov8n_b16_img64_freeze10": 10,
    }
    campaign["defaults"]["freeze"] = 10  # YOLOv8's backbone, one layer short of YOLO11's
    with pytest.raises(ConfigError) as error:
        expand_campaign(campaign)
    assert str(error.value) == (
        "campaign.defaults.freeze: freeze=10 is the backbone of yolov5/yolov8 but not of yolo11n "
        "(campaign.matrix.model[1]), whose backbone is 11 layers, in campaign.matrix (combination "
        "{'model': 'yolo11n'}); write freeze: backbone to freeze each model's own backbone"
    )
    campaign["defaults"]["freeze"] = "frozen"
    expected = r"^campaign.defaults.freeze: 'frozen' is text, not a whole number or 'backbone' - "
    with pytest.raises(ConfigError, match=expected):
        check_config({"dataset": {"raw": "r", "classes": ["a"]}, "campaign": campaign})
