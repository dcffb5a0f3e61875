"""Splitting a campaign between servers: every configuration in exactly one shard, balanced, stable."""

from pathlib import Path

import pytest

from campaign.core.configurations import ConfigError, expand_campaign
from campaign.planning.shards import (
    assign_shards,
    campaign_shards,
    configuration_jobs,
    parse_shard,
    shard_end,
    shard_table,
    split_record,
)
from campaign.planning.workload import planned_work
from tiny_campaign import resolved

COURSE = {
    "defaults": {"model": "yolov5n", "batch": 64, "imgsz": 320, "freeze": 0, "epochs": 50},
    "matrix": {"model": ["yolov5n", "yolov5s", "yolov5m", "yolov5l"], "batch": [64, 96], "freeze": [0, 10]},
}
# The config sections besides the campaign, complete with the schema's defaults, as the workflow resolves them.
CONFIG = resolved(COURSE, Path("results-of-no-campaign")).config


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
    assert "shard=2/2" in shard_table(configs, 2, CONFIG)


def test_more_shards_than_configurations_leaves_some_empty():
    configs = expand_campaign({"defaults": COURSE["defaults"]})
    assert list(assign_shards(configs, 3).values()) == [1]


PROBE_HEADER = (
    "probe,model,imgsz,configured_batch,batch,freeze,device,device_name,fits,peak_memory_mb,"
    "train_seconds_per_image,val_seconds_per_image,iterations\n"
)


def probed_folder(root, configs, seconds_per_image):
    """Split lists of 100/20/20 images and a probe of every configuration at `seconds_per_image(run)`."""
    (root / "dataset").mkdir(parents=True)
    for split, count in (("train", 100), ("val", 20), ("test", 20)):
        (root / "dataset" / f"{split}.txt").write_text("\n".join(f"{split}{i}.jpg" for i in range(count)))
    rows = [
        f"{name},{run.model},{run.imgsz},{run.batch},{run.batch},{run.freeze},0,GPU,True,1000,"
        f"{seconds_per_image(run)},0.001,5"
        for name, run in configs.items()
    ]
    (root / "plan").mkdir()
    (root / "plan" / "probes.csv").write_text(PROBE_HEADER + "\n".join(rows) + "\n")


def test_with_probes_shards_balance_planned_hours_and_the_first_run_records_them(tmp_path):
    configs = expand_campaign(COURSE)
    # Measured: the frozen configurations are as slow as the others, which the config-only cost denies.
    probed_folder(tmp_path, configs, lambda run: {"n": 0.01, "s": 0.02, "m": 0.04, "l": 0.08}[run.size])
    work = planned_work(configs, CONFIG, tmp_path, tmp_path / "logs")
    hours = {name: work[0][name] + work[1][name] for name in configs}
    shard_of, basis = campaign_shards(configs, 2, CONFIG, tmp_path, tmp_path / "logs", record=True)
    assert basis == "planned hours from the probes, on 2 server(s) of 1 GPU(s)"
    assert shard_of == assign_shards(configs, 2, work)
    loads = [sum(hours[n] for n in configs if shard_of[n] == s) for s in (1, 2)]
    assert abs(loads[0] - loads[1]) <= min(hours.values())  # pairs of equal hours: split evenly
    assert shard_of != assign_shards(configs, 2)  # not the config-only split
    # Timings measured later change nothing for the servers: the recorded split stands.
    (tmp_path / "plan" / "probes.csv").unlink()
    assert campaign_shards(configs, 2, CONFIG, tmp_path, tmp_path / "logs") == (shard_of, basis)
    # A configuration added later joins the least loaded shard; the others stay.
    wider = expand_campaign({**COURSE, "extra": [{"model": "yolov5n", "batch": 32}]})
    wider_of, wider_basis = campaign_shards(wider, 2, CONFIG, tmp_path, tmp_path / "logs", record=True)
    assert {n: s for n, s in wider_of.items() if n in shard_of} == shard_of and "joined" in wider_basis
    assert split_record(tmp_path).is_file()


def test_on_servers_of_several_gpus_each_shard_is_scheduled_and_ends_near_the_others(tmp_path):
    configs = expand_campaign(COURSE)
    probed_folder(tmp_path, configs, lambda run: {"n": 0.01, "s": 0.02, "m": 0.04, "l": 0.08}[run.size])
    work = planned_work(configs, CONFIG, tmp_path, tmp_path / "logs")
    shard_of = assign_shards(configs, 2, work, gpus_per_server=4)
    ends = [
        shard_end([job for n in configs if shard_of[n] == s for job in configuration_jobs(n, configs[n], work)], 4)
        for s in (1, 2)
    ]
    longest = max(work[0][n] + work[1][n] for n in configs)
    assert abs(ends[0] - ends[1]) <= longest
    # Each shard on its own 4 GPUs ends well before the whole campaign on one server of 4.
    whole = shard_end([job for n in configs for job in configuration_jobs(n, configs[n], work)], 4)
    assert max(ends) < 0.75 * whole
    table = shard_table(configs, 2, CONFIG, tmp_path, gpus_per_server=4)
    assert "on 2 server(s) of 4 GPU(s)" in table and table.count("ends after") == 2
    # A configuration kept in its shard stays there even where the other shard would end first.
    alone = assign_shards(configs, 2, work, kept={name: 1 for name in configs}, gpus_per_server=4)
    assert set(alone.values()) == {1}


def test_the_jobs_after_a_training_count_from_their_benchmark_files_once_any_ran(tmp_path):
    configs = expand_campaign({"defaults": COURSE["defaults"], "matrix": {"model": ["yolov5n", "yolov5s"]}})
    probed_folder(tmp_path, configs, lambda run: 0.01)
    before, after_estimate = planned_work(configs, CONFIG, tmp_path, tmp_path / "logs")
    assert all(hours > 0 for hours in after_estimate.values())  # estimated from the probe's validation speed
    logs = tmp_path / "logs" / "evaluate"
    logs.mkdir(parents=True)
    (logs / "yolov5n_b64_img320_freeze0_val.benchmark.tsv").write_text("s\th:m:s\n3600\t1:00:00\n")
    trains, afters = planned_work(configs, CONFIG, tmp_path, tmp_path / "logs")
    assert afters["yolov5n_b64_img320_freeze0"] == 1.0
    # The other: the measured one's ratio to its training, times its own training.
    ratio = 1.0 / trains["yolov5n_b64_img320_freeze0"]
    assert afters["yolov5s_b64_img320_freeze0"] == pytest.approx(ratio * trains["yolov5s_b64_img320_freeze0"])
