"""Splitting a campaign between servers: every configuration in exactly one shard, balanced, stable."""

import pytest

from campaign.configurations import ConfigError, expand_campaign
from campaign.shards import assign_shards, parse_shard, shard_table

COURSE = {
    "defaults": {"model": "yolov5n", "batch": 64, "imgsz": 320, "freeze": 0, "epochs": 50},
    "matrix": {"model": ["yolov5n", "yolov5s", "yolov5m", "yolov5l"], "batch": [64, 96], "freeze": [0, 10]},
}


def test_shard_is_i_of_n():
    assert parse_shard("2/3") == (2, 3) and parse_shard(None) is None
    for wrong in ("0/2", "3/2", "1-2", "a/b"):
        with pytest.raises(ConfigError, match="shard"):
            parse_shard(wrong)


def test_every_configuration_in_one_shard_balanced_by_cost():
    configs = expand_campaign(COURSE)
    shard_of = assign_shards(configs, 2)
    assert set(shard_of) == set(configs) and set(shard_of.values()) == {1, 2}
    loads = [sum(configs[n].expected_cost() for n in configs if shard_of[n] == s) for s in (1, 2)]
    # Longest first: the shards differ by less than the largest single training.
    assert abs(loads[0] - loads[1]) < max(run.expected_cost() for run in configs.values())
    # Derived from the config alone: every server computes the same split.
    assert assign_shards(expand_campaign(COURSE), 2) == shard_of
    assert "shard=2/2" in shard_table(configs, 2)


def test_more_shards_than_configurations_leaves_some_empty():
    configs = expand_campaign({"defaults": COURSE["defaults"]})
    assert list(assign_shards(configs, 3).values()) == [1]
