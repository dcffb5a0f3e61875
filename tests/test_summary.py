import numpy as np

from campaign.figures import pareto_front
from campaign.summary import markdown_table


def test_pareto_front_keeps_only_unbeaten_configurations():
    latency = np.array([1.0, 2.0, 3.0, 2.5, 0.5])
    accuracy = np.array([0.5, 0.7, 0.9, 0.6, 0.2])
    assert pareto_front(latency, accuracy) == [4, 0, 1, 2]


def test_pareto_front_of_equal_latency_keeps_the_more_accurate():
    assert pareto_front(np.array([1.0, 1.0]), np.array([0.3, 0.6])) == [1]


def test_markdown_table_formats_numbers_and_blanks_nan():
    text = markdown_table([{"config": "a", "mAP50": 0.123456, "x": float("nan")}])
    assert text.splitlines() == ["| config | mAP50 | x |", "|---|---|---|", "| a | 0.1235 |  |"]


def test_training_seconds_add_up_across_resumed_attempts():
    from campaign.training import training_seconds

    assert training_seconds([10.0, 20.0, 30.0]) == 30.0
    assert training_seconds([10.0, 20.0, 5.0, 12.0]) == 32.0
