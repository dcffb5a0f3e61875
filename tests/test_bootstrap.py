"""Bootstrap intervals and paired findings, on per-image matches made here with a known detector."""

import numpy as np
import pytest

from campaign.evaluation.bootstrap import (
    METRICS,
    ImageMatches,
    bootstrap_metrics,
    percentile_interval,
    resample_indices,
)
from campaign.evaluation.comparison import Group, findings, group_rows, single_differences


def detector_records(images: int, recall: float, seed: int, difficulty: np.ndarray | None = None) -> list[dict]:
    """Per-image records of a detector finding each object with probability `recall` (less on hard images).

    The images are the same for every detector (1-3 objects of 3 classes
    each); the detector's draws come from `seed`. A found object is a true
    positive up to an IoU threshold drawn per box; every image also gets one
    low-confidence false positive. Confidences are float32, as a model's are.
    """
    objects = np.random.default_rng(1000)
    targets_of = [objects.integers(0, 3, size=objects.integers(1, 4)) for _ in range(images)]
    rng = np.random.default_rng(seed)
    records = []
    for index, targets in enumerate(targets_of):
        chance = recall * (1 - difficulty[index]) if difficulty is not None else recall
        found = targets[rng.random(len(targets)) < chance]
        quality = rng.integers(1, 11, size=len(found))  # true positive at the first `quality` IoU thresholds
        tp = np.arange(10)[None, :] < quality[:, None]
        conf = np.concatenate([rng.uniform(0.5, 1.0, len(found)), rng.uniform(0.0, 0.6, 1)])
        records.append(
            {
                "image": f"img{index:04d}.jpg",
                "tp": np.vstack([tp, np.zeros((1, 10), bool)]),
                "conf": conf.astype(np.float32),
                "pred_cls": np.concatenate([found, rng.integers(0, 3, 1)]),
                "target_cls": targets,
            }
        )
    return records


def ultralytics_metrics(records: list[dict]) -> np.ndarray:
    """What Ultralytics' own DetMetrics makes of the same per-image statistics."""
    from ultralytics.utils.metrics import DetMetrics

    metrics = DetMetrics(names={0: "a", 1: "b", 2: "c"})
    for record in records:
        metrics.update_stats({**record, "target_img": np.unique(record["target_cls"]), "im_name": record["image"]})
    metrics.process()
    return np.array([metrics.box.mp, metrics.box.mr, metrics.box.map50, metrics.box.map])


def test_point_estimate_is_ultralytics_own_value():
    records = detector_records(60, recall=0.7, seed=1)
    matches = ImageMatches.from_records(records)
    np.testing.assert_allclose(matches.metrics(), ultralytics_metrics(records), rtol=1e-9)
    # Every image drawn once, in any order: the same numbers.
    shuffled = np.random.default_rng(0).permutation(len(matches.images))
    np.testing.assert_allclose(matches.metrics(shuffled), matches.metrics(), rtol=1e-9)


def test_an_image_drawn_twice_counts_twice():
    records = detector_records(5, recall=0.6, seed=2)
    matches = ImageMatches.from_records(records)
    twice = [records[0], {**records[0], "image": "copy.jpg"}, *records[1:3]]
    np.testing.assert_allclose(matches.metrics(np.array([0, 0, 1, 2])), ultralytics_metrics(twice), rtol=1e-9)


def test_matches_survive_saving_and_images_are_sorted(tmp_path):
    records = detector_records(8, recall=0.5, seed=3)[::-1]
    matches = ImageMatches.from_records(records)
    assert list(matches.images) == sorted(matches.images)
    matches.save(tmp_path / "matches.npz")
    loaded = ImageMatches.load(tmp_path / "matches.npz")
    np.testing.assert_array_equal(loaded.metrics(), matches.metrics())
    assert loaded.images_hash() == matches.images_hash()


def test_an_image_validated_twice_is_an_error():
    records = detector_records(3, recall=0.5, seed=4)
    with pytest.raises(ValueError, match="img0000.jpg"):
        ImageMatches.from_records([*records, records[0]])


def test_interval_narrows_as_the_split_grows():
    widths = {}
    for images in (40, 400):
        matches = ImageMatches.from_records(detector_records(images, recall=0.7, seed=5))
        resampled = bootstrap_metrics(matches, resamples=200, seed=0)
        low, high = percentile_interval(resampled[:, METRICS.index("mAP50-95")], 0.95)
        assert low <= matches.metrics()[3] <= high
        widths[images] = high - low
    # Ten times the images: about a third of the width (1/sqrt(10)).
    assert widths[400] < 0.6 * widths[40], widths


def test_resamples_depend_only_on_seed_and_image_count():
    np.testing.assert_array_equal(resample_indices(30, 5, seed=7), resample_indices(30, 5, seed=7))
    assert not np.array_equal(resample_indices(30, 5, seed=7), resample_indices(30, 5, seed=8))


def group_of(name: str, key: dict, records_by_seed: list[list[dict]], resamples: int = 300) -> Group:
    runs = [ImageMatches.from_records(records) for records in records_by_seed]
    return Group(
        name,
        key,
        [f"{name}_seed{index}" for index in range(len(runs))],
        np.array([run.metrics() for run in runs]),
        np.array([bootstrap_metrics(run, resamples, seed=0) for run in runs]),
    )


KEY = {"model": "yolov8n", "batch": 16, "imgsz": 128, "freeze": 0}


def test_pairs_differ_in_exactly_one_argument_and_sizes_sort_naturally():
    empty = [detector_records(5, 0.5, seed=0)]
    groups = [
        group_of("s", {**KEY, "model": "yolov8s"}, empty, 10),
        group_of("n", KEY, empty, 10),
        group_of("n_frozen", {**KEY, "freeze": 10}, empty, 10),
        group_of("s_frozen_b32", {**KEY, "model": "yolov8s", "freeze": 10, "batch": 32}, empty, 10),
    ]
    pairs = [(argument, first.name, second.name) for argument, first, second in single_differences(groups)]
    assert pairs == [("freeze", "n", "n_frozen"), ("model", "n", "s")]


def test_a_real_difference_is_found_and_no_difference_is_not_claimed():
    # The same images are hard for every model (as in practice): pairing cancels that.
    difficulty = np.random.default_rng(9).uniform(0, 0.8, 150)
    weak = group_of("weak", KEY, [detector_records(150, 0.55, seed=10, difficulty=difficulty)])
    strong = group_of("strong", {**KEY, "freeze": 10}, [detector_records(150, 0.85, seed=11, difficulty=difficulty)])
    twin = group_of("twin", {**KEY, "batch": 32}, [detector_records(150, 0.55, seed=12, difficulty=difficulty)])
    rows = {row["second_group"]: row for row in findings([weak, strong, twin], "mAP50", "test", seed=0, level=0.95)}
    assert rows["strong"]["excludes_zero"] and rows["strong"]["answer"] == "freeze=10 higher"
    assert rows["strong"]["low"] > 0
    assert not rows["twin"]["excludes_zero"] and rows["twin"]["answer"] == "no difference shown"
    assert rows["twin"]["low"] < 0 < rows["twin"]["high"]


def test_seed_replicates_are_pooled_with_their_spread():
    records = [detector_records(80, recall, seed=20 + index) for index, recall in enumerate((0.5, 0.7, 0.9))]
    pooled = group_of("three", KEY, records)
    single = group_of("one", KEY, records[1:2])
    (row_pooled,) = group_rows([pooled], seed=0, level=0.95, prefix="test_")
    (row_single,) = group_rows([single], seed=0, level=0.95, prefix="test_")
    assert row_pooled["runs"] == 3 and row_pooled["test_mAP50"] == pytest.approx(pooled.values[:, 2].mean(), abs=1e-4)
    assert row_pooled["test_mAP50_seed_sd"] > 0.05
    assert np.isnan(row_single["test_mAP50_seed_sd"])
    # Seeds this different widen the interval beyond the images' own uncertainty.
    width = lambda row: row["test_mAP50_high"] - row["test_mAP50_low"]  # noqa: E731
    assert width(row_pooled) > width(row_single)


def test_pairing_on_the_same_images_narrows_the_difference():
    # Two in five images are hard for both models, as in practice; pairing cancels that shared part.
    difficulty = (np.random.default_rng(30).random(120) < 0.4) * 0.9
    first = ImageMatches.from_records(detector_records(120, 0.95, seed=31, difficulty=difficulty))
    second = ImageMatches.from_records(detector_records(120, 0.99, seed=32, difficulty=difficulty))
    column = METRICS.index("mAP50")
    paired = bootstrap_metrics(second, 300, seed=0) - bootstrap_metrics(first, 300, seed=0)
    unpaired = bootstrap_metrics(second, 300, seed=1) - bootstrap_metrics(first, 300, seed=0)
    width = lambda values: np.subtract(*percentile_interval(values[:, column], 0.95)[::-1])  # noqa: E731
    assert width(paired) < 0.7 * width(unpaired)


def null_groups(pairs: int, resamples: int, seed: int) -> list[Group]:
    """`pairs` pairs of configurations with nothing between them, on one test set, as a bootstrap sees them.

    Each group's point value and its resamples share the test set's image effect; each group adds its own
    sampling noise, as two equally good models do on a finite test set.
    """
    rng = np.random.default_rng(seed)
    images = rng.normal(0, 0.05, resamples)  # the same resampled images for every group
    groups = []
    for pair in range(pairs):
        for freeze in (0, 10):
            key = {"model": f"m{pair}", "imgsz": 64 + 32 * pair, "freeze": freeze}  # pairs differ in one argument
            value = 0.5 + rng.normal(0, 0.01)
            draws = value + images + rng.normal(0, 0.01, resamples)
            name = f"m{pair}_freeze{freeze}"
            groups.append(Group(name, key, [name], np.full((1, 4), value), np.repeat(draws[None, :, None], 4, axis=2)))
    return groups


def test_twenty_comparisons_of_equal_configurations_show_no_difference_after_adjustment():
    rows = findings(null_groups(20, 2000, seed=3), "mAP50", "test", seed=0, level=0.95)
    assert len(rows) == 20
    # Asked one at a time, some pairs of equal configurations look different (about one in twenty)...
    assert sum(row["answer"] != "no difference shown" for row in rows) >= 1
    # ...but not after Holm's adjustment over the twenty.
    assert all(row["answer_adjusted"] == "no difference shown" for row in rows)
    assert all(row["holm_p"] >= row["p_value"] for row in rows)


def test_holm_keeps_a_real_difference_and_adjusts_step_down():
    from campaign.evaluation.comparison import holm_adjusted

    assert holm_adjusted([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    groups = null_groups(5, 2000, seed=4)
    groups[1].values += 0.1  # m0 with freeze 10 is really better
    groups[1].resampled += 0.1
    rows = {row["first_group"]: row for row in findings(groups, "mAP50", "test", seed=0, level=0.95)}
    assert rows["m0_freeze0"]["answer_adjusted"] == "freeze=10 higher"


def test_a_comparison_on_a_batch_that_was_not_used_says_so():
    groups = null_groups(2, 500, seed=5)
    notes = {"m1_freeze10": "batch reduced from 96: 3 epochs at 48"}
    rows = {row["first_group"]: row for row in findings(groups, "mAP50", "test", 0, 0.95, notes)}
    caveat = rows["m1_freeze0"]["batch_caveat"]
    assert caveat == "freeze=10: batch reduced from 96: 3 epochs at 48"
    assert rows["m1_freeze0"]["answer"].startswith(f"not as configured ({caveat}): ")
    assert rows["m1_freeze0"]["answer_adjusted"].startswith("not as configured")
    assert rows["m0_freeze0"]["batch_caveat"] == "" and not rows["m0_freeze0"]["answer"].startswith("not")
