"""The device monitor keeps sampling whatever happens to its TensorBoard log."""

import csv
import shutil
import time

from campaign.gpus.monitor import Monitor


def samples(path):
    return list(csv.DictReader(open(path)))


def test_the_csv_goes_on_when_the_tensorboard_folder_is_removed_under_it(tmp_path):
    """What Ultralytics' fresh start of a run folder used to do to the monitor's TensorBoard log."""
    with Monitor(tmp_path / "monitor.csv", [], interval=0.05, tensorboard_dir=tmp_path / "tb"):
        deadline = time.monotonic() + 30  # the writer's first import of torch takes seconds
        while time.monotonic() < deadline and not list((tmp_path / "tb").glob("events.out.tfevents.*")):
            time.sleep(0.05)
        time.sleep(0.3)
        shutil.rmtree(tmp_path / "tb")
        before = len(samples(tmp_path / "monitor.csv"))
        time.sleep(0.5)
    after = samples(tmp_path / "monitor.csv")
    assert before >= 3 and len(after) >= before + 3
    assert {row["device"] for row in after} == {"cpu"}


def test_the_csv_is_written_when_no_tensorboard_log_can_be_made(tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    with Monitor(tmp_path / "monitor.csv", [], interval=0.05, tensorboard_dir=tmp_path / "not-a-folder" / "tb"):
        time.sleep(0.4)
    assert len(samples(tmp_path / "monitor.csv")) >= 3


def test_devices_that_cannot_be_read_leave_an_empty_table_not_a_failed_job(tmp_path, monkeypatch):
    """On a SLURM node whose GPUs NVML cannot see, the training goes on and its table has no rows."""
    import pynvml

    def no_library():
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_library)
    with Monitor(tmp_path / "monitor.csv", [0], interval=0.05):
        time.sleep(0.3)
    assert (tmp_path / "monitor.csv").read_text().splitlines() == [
        "time,host,device,utilization,memory_mb,power_w,temperature_c"
    ]
