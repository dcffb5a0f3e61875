"""From probe rows to memory, fit, hours and makespan."""

import pytest

from campaign.planning.estimate import (
    calibration,
    estimate,
    job_startup_seconds,
    largest_batch,
    makespan,
    memory_line,
    training_fixed_seconds,
)


def row(batch, fits=True, memory="", train="0.01", val="0.002", device="cpu"):
    return {
        "batch": str(batch),
        "fits": str(fits),
        "peak_memory_mb": str(memory),
        "train_seconds_per_image": train,
        "val_seconds_per_image": val,
        "device": device,
        "device_name": "a device",
    }


def test_memory_is_linear_in_the_batch_through_two_probes():
    rows = [row(64, memory=5000), row(32, memory=3000)]
    assert memory_line(rows) == pytest.approx((1000, 62.5))
    assert largest_batch(rows, 8192) == 115  # (8192 - 1000) / 62.5
    assert memory_line([row(64, memory=5000)]) is None


def test_a_configuration_that_does_not_fit_gets_the_batch_that_does():
    # Batch 96 ran out of memory; 48 and 24 ran: 1000 MB + 100 MB per image.
    rows = [row(96, fits=False), row(48, memory=5800), row(24, memory=3400)]
    result = estimate("yolov5l_b96", {"epochs": 50, "gpus": 1}, rows, 1000, 200, 8192)
    assert not result.fits and result.memory_mb == pytest.approx(10600)
    assert result.largest_batch == 71
    assert "batch: 71 fits" in result.advice(8192) and "gpus: 2" in result.advice(8192)


def test_a_cpu_probe_below_the_configured_batch_extrapolates_its_memory():
    # On the CPU, batch 96 was not tried: 16 and 8 ran, 1000 MB + 100 MB per image.
    rows = [{**r, "configured_batch": "96"} for r in (row(16, memory=2600), row(8, memory=1800))]
    result = estimate("yolov5l_b96", {"epochs": 50, "gpus": 1}, rows, 1000, 200, 12000)
    assert result.extrapolated and result.memory_mb == pytest.approx(10600) and result.fits
    assert not estimate("yolov5l_b96", {"epochs": 50, "gpus": 1}, rows, 1000, 200, 8192).fits


def test_hours_follow_epochs_images_and_gpus():
    rows = [row(64, memory=5000, train="0.01", val="0.002"), row(32, memory=3000)]
    one = estimate("a", {"epochs": 50, "gpus": 1}, rows, 1000, 200, 8192)
    # 50 * (1000 * 0.01 + 200 * 0.002) + 200 * 0.002 = 520.4 s
    assert one.fits and one.hours * 3600 == pytest.approx(520.4)
    two = estimate("a", {"epochs": 50, "gpus": 2}, rows, 1000, 200, 8192)
    assert two.hours == pytest.approx(one.hours / 2) and two.gpu_hours == pytest.approx(one.gpu_hours)


def test_finished_trainings_scale_the_rest():
    assert calibration({"a": 1.0, "b": 2.0, "c": 4.0}, {"a": 1.5, "b": 3.0}) == pytest.approx(1.5)
    assert calibration({"a": 1.0}, {}) == 1.0


def test_makespan_places_multi_gpu_jobs_on_one_server():
    assert makespan([(2.0, 1)] * 4, servers=1, gpus_per_server=4) == 2.0
    assert makespan([(2.0, 1)] * 8, servers=2, gpus_per_server=4) == 2.0
    assert makespan([(2.0, 1)] * 9, servers=2, gpus_per_server=4) == 4.0
    # A 4-GPU job needs a whole server: two of them on one server run one after the other.
    assert makespan([(3.0, 4), (3.0, 4)], servers=1, gpus_per_server=4) == 6.0
    assert makespan([(3.0, 4), (3.0, 4)], servers=2, gpus_per_server=4) == 3.0
    # Longest first: the 5 h job starts at once, the short ones fill the other GPUs.
    assert makespan([(1.0, 1), (1.0, 1), (5.0, 1)], servers=1, gpus_per_server=2) == 5.0


def test_packed_trainings_run_side_by_side_while_their_needs_fit():
    from campaign.planning.estimate import PlannedJob, packed_makespan

    small = [PlannedJob(f"small{i}", 2.0, need_mb=3000) for i in range(4)]
    plan = packed_makespan(small, servers=1, gpus_per_server=1, device_mb=8192, max_share=2)
    assert plan.hours == 4.0  # two at a time on the one GPU, not 8 h one after another
    assert plan.together == {"server 1 GPU 0": [["small0", "small1"], ["small2", "small3"]]}
    # Three would fit in memory (9,000 MB > 8,192 MB does not): the share count and memory both bound it.
    assert packed_makespan(small, 1, 1, device_mb=8192, max_share=3).hours == 4.0
    assert packed_makespan(small, 1, 1, device_mb=12000, max_share=4).hours == 2.0


def test_a_job_without_a_known_need_holds_its_gpu_alone():
    from campaign.planning.estimate import PlannedJob, packed_makespan

    jobs = [PlannedJob("whole", 3.0), PlannedJob("a", 1.0, need_mb=1000), PlannedJob("b", 1.0, need_mb=1000)]
    plan = packed_makespan(jobs, servers=1, gpus_per_server=1, device_mb=8192, max_share=4)
    assert plan.hours == 4.0 and plan.together == {"server 1 GPU 0": [["a", "b"]]}
    on_two = packed_makespan(jobs, servers=1, gpus_per_server=2, device_mb=8192, max_share=4)
    assert on_two.hours == 3.0  # a and b together on the second GPU while the whole job holds the first
    with pytest.raises(ValueError, match="big fits no GPU of 8192 MB"):
        packed_makespan([PlannedJob("big", 1.0, need_mb=9000)], 1, 1, device_mb=8192, max_share=2)


def test_a_probe_that_timed_the_epoch_s_end_and_the_start_up_prices_them():
    timed = {"startup_seconds": "6.0", "epoch_validation_seconds": "1.5", "checkpoint_seconds": "0.5"}
    rows = [{**row(64, memory=5000, train="0.01"), **timed}, row(32, memory=3000)]
    one = estimate("a", {"epochs": 50, "gpus": 1}, rows, 1000, 200, 8192)
    # 6 + 50 * (1000 * 0.01 + 1.5 + 0.5) + 1.5: the validation timed with its set-up, not 200 images at 0.002 s.
    assert one.hours * 3600 == pytest.approx(607.5)
    # On 2 GPUs only the steps share out: the start-up, validations and checkpoints stay whole.
    two = estimate("a", {"epochs": 50, "gpus": 2}, rows, 1000, 200, 8192)
    assert two.hours * 3600 == pytest.approx(6 + 50 * (5 + 2) + 1.5)
    assert training_fixed_seconds(rows) == pytest.approx(7.5)  # its start-up and the final validation
    assert training_fixed_seconds([row(64), row(32)]) is None  # an older probe: not timed
    # A job's start-up: the median over the probes that timed one.
    assert job_startup_seconds({"a": rows, "b": [{**row(16), **timed, "startup_seconds": "4.0"}]}) == pytest.approx(5)
    assert job_startup_seconds({"a": [row(64)]}) == 0
