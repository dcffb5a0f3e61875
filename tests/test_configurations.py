import pytest

from campaign.core.configurations import ConfigError, canonical_order, expand_campaign
from campaign.training.weights import resolve_pretrained_weights

DEFAULTS = {"model": "yolov5n", "batch": 16, "imgsz": 320, "freeze": 0, "epochs": 10}


def campaign(**sections):
    return {"defaults": dict(DEFAULTS), **sections}


def test_matrix_is_the_cross_product_with_readable_names():
    configs = expand_campaign(campaign(matrix={"model": ["yolov5n", "yolov5m"], "freeze": [0, 10]}))
    assert sorted(configs) == [
        "yolov5m_b16_img320_freeze0",
        "yolov5m_b16_img320_freeze10",
        "yolov5n_b16_img320_freeze0",
        "yolov5n_b16_img320_freeze10",
    ]
    assert configs["yolov5m_b16_img320_freeze10"].freeze == 10


def test_names_do_not_depend_on_the_other_configurations():
    small = expand_campaign(campaign(matrix={"batch": [64]}))
    large = expand_campaign(campaign(matrix={"batch": [32, 64, 96], "model": ["yolov5n", "yolov8s"]}))
    (name,) = small
    assert name in large
    assert small[name] == large[name]


def test_non_default_arguments_appear_in_the_name():
    configs = expand_campaign(campaign(matrix={"hyp": ["default", "scratch-high"], "epochs": [10, 50]}))
    assert "yolov5n_b16_img320_freeze0_ep50_scratch-high" in configs
    assert "yolov5n_b16_img320_freeze0" in configs


def test_overrides_exclusions_and_extras():
    configs = expand_campaign(
        campaign(
            matrix={"model": ["yolov5n", "yolov5l"], "batch": [64, 96]},
            overrides=[{"match": {"model": "yolov5l"}, "set": {"epochs": 5}}],
            exclude=[{"model": "yolov5l", "batch": 96}],
            extra=[{"model": "yolov5m", "batch": 16, "freeze": 10}],
        )
    )
    assert "yolov5l_b96_img320_freeze0_ep5" not in configs
    assert configs["yolov5l_b64_img320_freeze0_ep5"].epochs == 5
    assert configs["yolov5m_b16_img320_freeze10"].freeze == 10
    assert len(configs) == 4


def test_a_misspelt_key_in_an_override_or_exclude_is_an_error_naming_it():
    matrix = {"model": ["yolov5n", "yolov5s"]}
    with pytest.raises(ConfigError, match=r"campaign.overrides\[0\].*'modle' is not a configuration key.*model"):
        expand_campaign(campaign(matrix=matrix, overrides=[{"match": {"modle": "yolov5s"}, "set": {"epochs": 5}}]))
    with pytest.raises(ConfigError, match=r"campaign.exclude\[1\]: \{'model': 'yolov5x'\} matches no configuration"):
        expand_campaign(campaign(matrix=matrix, exclude=[{"model": "yolov5n"}, {"model": "yolov5x"}]))


def test_an_unknown_ultralytics_argument_is_an_error_with_the_closest_names():
    with pytest.raises(ConfigError, match=r"args.close_mosaik is not an Ultralytics training argument.*close_mosaic"):
        expand_campaign(campaign(extra=[{"args": {"close_mosaik": 0}}]))
    (config,) = expand_campaign({"defaults": {**DEFAULTS, "args": {"close_mosaic": 0, "iou": 0.6}}}).values()
    assert config.train_args()["close_mosaic"] == 0


def test_duplicate_names_are_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"campaign.extra\[0\].*used twice"):
        expand_campaign(campaign(matrix={"batch": [16]}, extra=[{"batch": 16}]))


def test_freezing_random_weights_is_refused():
    with pytest.raises(ConfigError, match="pretrained"):
        expand_campaign(campaign(extra=[{"freeze": 10, "pretrained": False}]))


def test_freezing_every_layer_is_refused():
    with pytest.raises(ConfigError, match="nothing to train"):
        expand_campaign(campaign(extra=[{"freeze": 30}]))


def test_train_args_carry_the_hyperparameter_set_and_change_the_hash():
    configs = expand_campaign(campaign(matrix={"hyp": ["default", "scratch-low"]}))
    plain, low = configs["yolov5n_b16_img320_freeze0"], configs["yolov5n_b16_img320_freeze0_scratch-low"]
    assert low.train_args()["optimizer"] == "SGD" and low.train_args()["lrf"] == 0.01
    assert "optimizer" not in plain.train_args()
    assert plain.args_hash() != low.args_hash()


def test_missing_weights_file_is_reported_with_what_to_do(tmp_path):
    configs = expand_campaign(campaign())
    missing = tmp_path / "yolov5n.pt"
    with pytest.raises(ConfigError, match=r"weights.yolov5n: checkpoint file .*yolov5n.pt.* does not exist"):
        resolve_pretrained_weights(configs.values(), {"yolov5n": str(missing)}, [])
    with pytest.raises(ConfigError, match="pretrain.models"):
        resolve_pretrained_weights(configs.values(), {}, [])
    missing.write_bytes(b"checkpoint")
    (name,) = configs
    assert resolve_pretrained_weights(configs.values(), {"yolov5n": str(missing)}, []) == {name: str(missing)}
    assert resolve_pretrained_weights(configs.values(), {}, ["yolov5n"]) == {name: "results/pretrain/yolov5n.pt"}


def test_canonical_order_sorts_keys_at_every_depth_and_keeps_lists():
    value = {"b": {"y": 1, "x": [{"d": 1, "c": 2}]}, "a": [3, 1]}
    ordered = canonical_order(value)
    assert ordered == value
    assert list(ordered) == ["a", "b"] and list(ordered["b"]) == ["x", "y"]
    assert list(ordered["b"]["x"][0]) == ["c", "d"] and ordered["a"] == [3, 1]


def test_seed_replicates_keep_the_first_name_and_share_a_group():
    single = expand_campaign(campaign())
    replicated = expand_campaign(campaign(overrides=[{"match": {"model": "yolov5n"}, "set": {"replicates": 3}}]))
    (name,) = single
    assert sorted(replicated) == [name, f"{name}_seed1", f"{name}_seed2"]
    # Asking for more seeds later does not rename (retrain) the one already trained.
    assert replicated[name] == single[name]
    assert [run.seed for run in replicated.values()] == [0, 1, 2]
    assert {run.group for run in replicated.values()} == {name}
    assert len({run.args_hash() for run in replicated.values()}) == 3
    assert len({str(run.comparison_key()) for run in replicated.values()}) == 1


def test_replicates_of_a_named_extra_and_colliding_seeds():
    configs = expand_campaign(campaign(extra=[{**DEFAULTS, "name": "baseline", "replicates": 2, "seed": 5}]))
    assert {"baseline", "baseline_seed6"} <= set(configs)
    assert configs["baseline_seed6"].group == "baseline"
    with pytest.raises(ConfigError, match="seed1.*used twice"):
        expand_campaign(campaign(matrix={"seed": [0, 1]}, overrides=[{"match": {"seed": 0}, "set": {"replicates": 2}}]))


def test_comparison_keys_differ_in_the_argument_that_differs():
    configs = expand_campaign(campaign(matrix={"freeze": [0, 10]}, defaults={**DEFAULTS, "args": {"lr0": 0.01}}))
    first, second = (run.comparison_key() for run in configs.values())
    assert {key for key in first if first[key] != second[key]} == {"freeze"}
    assert first["args"] == '{"lr0": 0.01}'


def test_the_models_a_campaign_may_name_are_one_list_with_their_layers_checked():
    """The schema's enum is configurations.MODELS; each family's layer counts are its Ultralytics YAML's."""
    import yaml
    from ultralytics.nn.tasks import yaml_model_load

    from campaign.core.configurations import BACKBONE_LAYERS, MODELS, SCHEMA, TOTAL_LAYERS

    assert yaml.safe_load(SCHEMA.read_text())["$defs"]["model"]["enum"] == MODELS
    for family in BACKBONE_LAYERS:
        layout = yaml_model_load(f"{family}n.yaml")
        assert len(layout["backbone"]) == BACKBONE_LAYERS[family], family
        assert len(layout["backbone"]) + len(layout["head"]) == TOTAL_LAYERS[family], family
