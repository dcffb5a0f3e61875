import numpy as np

from campaign.reporting.figures import pareto_front
from campaign.reporting.summary import html_table, markdown_table


def test_pareto_front_keeps_only_unbeaten_configurations():
    latency = np.array([1.0, 2.0, 3.0, 2.5, 0.5])
    accuracy = np.array([0.5, 0.7, 0.9, 0.6, 0.2])
    assert pareto_front(latency, accuracy) == [4, 0, 1, 2]


def test_pareto_front_of_equal_latency_keeps_the_more_accurate():
    assert pareto_front(np.array([1.0, 1.0]), np.array([0.3, 0.6])) == [1]


def test_pareto_front_counts_latencies_within_their_spread_as_equal():
    """A faster median inside the other's spread does not make it faster: the more accurate point wins alone."""
    latency, accuracy = np.array([9.2, 13.9, 30.0]), np.array([0.40, 0.45, 0.50])
    assert pareto_front(latency, accuracy) == [0, 1, 2]  # by medians alone the noise puts 0 on the front
    low, high = np.array([8.0, 9.0, 28.0]), np.array([14.5, 15.0, 32.0])
    assert pareto_front(latency, accuracy, low, high) == [1, 2]
    # Spreads apart: the faster one is faster again.
    low, high = np.array([9.0, 13.5, 28.0]), np.array([9.5, 14.2, 32.0])
    assert pareto_front(latency, accuracy, low, high) == [0, 1, 2]


def test_markdown_table_formats_numbers_and_blanks_nan():
    text = markdown_table([{"config": "a", "mAP50": 0.123456, "x": float("nan")}])
    assert text.splitlines() == ["| config | mAP50 | x |", "|---|---|---|", "| a | 0.1235 |  |"]


def test_training_seconds_add_up_across_resumed_attempts():
    from campaign.training.trainer import training_seconds

    assert training_seconds([10.0, 20.0, 30.0]) == 30.0
    assert training_seconds([10.0, 20.0, 5.0, 12.0]) == 32.0


def test_device_intervals_and_busy_fractions(tmp_path):
    from campaign.reporting.figures import busy_fractions, campaign_timeline, device_intervals

    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(
        "time,device,utilization,memory_mb,power_w,temperature_c\n"
        + "".join(f"{t},gpu0,80,1000,,\n" for t in range(0, 11))
        + "".join(f"{t},gpu0,80,1000,,\n" for t in range(100, 111))
    )  # interrupted, resumed later
    second.write_text(
        "time,device,utilization,memory_mb,power_w,temperature_c\n"
        + "".join(f"{t},gpu1,40,1000,,\n" for t in range(0, 111))
    )
    intervals = device_intervals({"a": first, "b": second, "missing": tmp_path / "none.csv"})
    assert len(intervals) == 3
    fractions = dict(busy_fractions(intervals)[["device", "busy_fraction"]].itertuples(index=False))
    assert abs(fractions["gpu0"] - 20 / 110) < 1e-9 and abs(fractions["gpu1"] - 1.0) < 1e-9
    campaign_timeline(intervals, busy_fractions(intervals), tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").stat().st_size > 5000


def test_two_servers_gpu0_are_two_devices(tmp_path):
    from campaign.reporting.figures import busy_fractions, device_intervals

    monitors = {}
    for host, start in (("server-a", 0), ("server-b", 50)):
        monitors[host] = tmp_path / f"{host}.csv"
        monitors[host].write_text(
            "time,host,device,utilization,memory_mb,power_w,temperature_c\n"
            + "".join(f"{t},{host},gpu0,90,1000,,\n" for t in range(start, start + 51))
        )
    intervals = device_intervals(monitors)
    assert sorted(intervals["device"]) == ["server-a gpu0", "server-b gpu0"]
    fractions = busy_fractions(intervals).set_index("device")
    assert list(fractions["host"]) == ["server-a", "server-b"]
    assert fractions["busy_fraction"].round(3).tolist() == [0.5, 0.5]


def test_makespan_schedules_longest_first():
    from campaign.planning.estimate import makespan

    assert makespan([(4, 1), (3, 1), (3, 1), (2, 1)], 1, 2) == 6
    assert makespan([(5, 1), (1, 1), (1, 1)], 1, 4) == 5
    assert makespan([], 1, 2) == 0


def test_plan_calibrates_on_finished_trainings(tmp_path):
    import json

    from campaign.core.configurations import expand_campaign
    from campaign.planning.plan import seconds_per_cost

    configs = expand_campaign(
        {
            "defaults": {"model": "yolov8n", "batch": 16, "imgsz": 640, "freeze": 0, "epochs": 10},
            "matrix": {"freeze": [0, 10]},
        }
    )
    assert seconds_per_cost(configs, tmp_path) is None
    name = "yolov8n_b16_img640_freeze0"
    (tmp_path / "train" / name).mkdir(parents=True)
    (tmp_path / "train" / name / "train.json").write_text(json.dumps({"train_seconds": 870.0}))
    assert abs(seconds_per_cost(configs, tmp_path) - 870.0 / configs[name].expected_cost()) < 1e-9
    assert configs["yolov8n_b16_img640_freeze10"].expected_cost() < configs[name].expected_cost()


def test_an_earlier_attempt_is_reused_only_with_the_same_key(tmp_path):
    import json

    import torch

    from campaign.training.run_folder import TrainingFolder, run_state

    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    assert run_state(TrainingFolder(tmp_path), "key")[0] == "fresh"
    (tmp_path / "run.args.json").write_text(json.dumps({"args_hash": "key"}))
    torch.save({"epoch": 4}, run / "weights" / "last.pt")
    assert run_state(TrainingFolder(tmp_path), "key") == ("resume", 5)
    assert run_state(TrainingFolder(tmp_path), "other data")[0] == "stale"
    torch.save({"epoch": -1}, run / "weights" / "last.pt")
    assert run_state(TrainingFolder(tmp_path), "key")[0] == "finished"


def _checkpoint(path, epoch, cut=False):
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({"epoch": epoch, "weights": torch.zeros(1000)}, buffer)
    data = buffer.getvalue()
    path.write_bytes(data[: len(data) // 2] if cut else data)  # cut: as a job killed mid-write leaves it


def test_a_run_killed_while_saving_resumes_from_best_pt(tmp_path):
    import json
    import logging

    from campaign.training.run_folder import TrainingFolder, read_checkpoint, recover_damaged_run, run_state

    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    (tmp_path / "run.args.json").write_text(json.dumps({"args_hash": "key"}))
    _checkpoint(run / "weights" / "last.pt", 6, cut=True)
    _checkpoint(run / "weights" / "best.pt", 4)
    assert run_state(TrainingFolder(tmp_path), "key") == ("damaged", 0)
    assert recover_damaged_run(TrainingFolder(tmp_path), logging.getLogger("test")) == ("resume", 5)
    assert read_checkpoint(run / "weights" / "last.pt")["epoch"] == 4
    assert run_state(TrainingFolder(tmp_path), "key") == ("resume", 5)

    # Killed while the finished run's last.pt was stripped: best.pt holds the result.
    _checkpoint(run / "weights" / "last.pt", -1, cut=True)
    _checkpoint(run / "weights" / "best.pt", -1)
    assert recover_damaged_run(TrainingFolder(tmp_path), logging.getLogger("test")) == ("finished", 0)


def test_a_run_with_no_whole_checkpoint_is_set_aside_and_started_afresh(tmp_path):
    import json
    import logging

    from campaign.training.run_folder import TrainingFolder, recover_damaged_run, run_state

    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    (tmp_path / "run.args.json").write_text(json.dumps({"args_hash": "key"}))
    _checkpoint(run / "weights" / "last.pt", 3, cut=True)
    assert run_state(TrainingFolder(tmp_path), "key") == ("damaged", 0)
    assert recover_damaged_run(TrainingFolder(tmp_path), logging.getLogger("test")) == ("fresh", 0)
    assert not run.exists()
    (aside,) = tmp_path.glob("run.damaged-*")
    assert (aside / "weights" / "last.pt").is_file()  # kept for a person to look at


def test_html_table_escapes_cells_and_keeps_raw_values_for_sorting():
    page = html_table([{"config": "<b>a</b>", "mAP50": 0.123456}, {"config": "b", "mAP50": 0.5}], "t")
    assert "&lt;b&gt;a&lt;/b&gt;" in page and "<b>a</b>" not in page
    assert 'data-value="0.123456">0.1235</td>' in page
    assert page.count("<tr>") == 3 and "addEventListener" in page and "http" not in page
