"""The one scheduler's arithmetic on hand-made jobs: whole GPUs, shared ones, two servers, jobs after trainings."""

import pytest

from campaign.planning.schedule import Job, schedule


def test_whole_gpus_longest_first_and_a_multi_gpu_job_on_one_server():
    jobs = [Job("a", 1.0), Job("b", 1.0), Job("c", 5.0)]
    placed = schedule(jobs, 1, 2)
    assert placed.end == 5.0 and placed.ends == {"c": 5.0, "a": 1.0, "b": 2.0}
    assert schedule([Job("ddp1", 3.0, gpus=4), Job("ddp2", 3.0, gpus=4)], 1, 4).end == 6.0
    assert schedule([Job("ddp1", 3.0, gpus=4), Job("ddp2", 3.0, gpus=4)], 2, 4).end == 3.0
    # Two servers of two GPUs: a 2-GPU job cannot take one GPU of each.
    placed = schedule([Job("one", 2.0), Job("two", 2.0), Job("three", 2.0), Job("ddp", 1.0, gpus=2)], 2, 2)
    assert placed.end == 3.0 and placed.ends["ddp"] == 3.0  # once one server has both free


def test_shared_gpus_take_jobs_while_their_needs_and_the_share_count_allow():
    small = [Job(f"s{i}", 2.0, need_mb=3000) for i in range(4)]
    placed = schedule(small, 1, 1, device_mb=8192, max_share=2)
    assert placed.end == 4.0 and placed.together == {"server 1 GPU 0": [["s0", "s1"], ["s2", "s3"]]}
    assert schedule(small, 1, 1, device_mb=12000, max_share=4).end == 2.0
    # A job without a known need holds its GPU alone; the shared ones go to the other.
    mixed = [Job("whole", 3.0), Job("a", 1.0, need_mb=1000), Job("b", 1.0, need_mb=1000)]
    assert schedule(mixed, 1, 2, device_mb=8192, max_share=4).end == 3.0
    with pytest.raises(ValueError, match="big fits no GPU of 8192 MB"):
        schedule([Job("big", 1.0, need_mb=9000)], 1, 1, device_mb=8192, max_share=2)


def test_the_jobs_after_a_training_wait_for_it_and_trainings_go_first():
    jobs = [
        Job("t1", 10.0),
        Job("t2", 4.0),
        Job("t1 eval", 3.0, after="t1", training=False),
        Job("t2 eval", 3.0, after="t2", training=False),
    ]
    placed = schedule(jobs, 1, 2)
    # t2's evaluation starts on the GPU t2 leaves; t1's once t1 has ended.
    assert placed.ends == {"t1": 10.0, "t2": 4.0, "t2 eval": 7.0, "t1 eval": 13.0}
    # A running training is placed before a longer one that waits.
    running = schedule([Job("long", 10.0), Job("resumed", 2.0, running=True)], 1, 1)
    assert running.ends == {"resumed": 2.0, "long": 12.0}


def test_a_job_alone_needs_its_whole_server_and_trainings_may_be_capped():
    jobs = [Job("t", 4.0), Job("timing", 1.0, after="t", training=False, alone=True), Job("e", 6.0, training=False)]
    placed = schedule(jobs, 1, 2)
    assert placed.ends["timing"] == 7.0  # starts at 6, once "e" frees the second slot
    # A CPU campaign: one training at a time, its evaluations on every core.
    cpu = [Job("t1", 5.0), Job("t2", 5.0), Job("e1", 2.0, after="t1", training=False)]
    assert schedule(cpu, 1, 4, training_slots=1).ends == {"t1": 5.0, "t2": 10.0, "e1": 7.0}
