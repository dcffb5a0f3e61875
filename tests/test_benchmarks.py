"""Every benchmark with a quick mode runs end to end and prints the table its full run prints.

The quick modes are checks, not figures: tiny sizes, one repeat. Their tables go to a
temporary folder (DETECTION_CAMPAIGN_BENCHMARK_RESULTS), never over measured ones.
"""

import csv
import os
import subprocess
import sys
import time

import pytest

from tiny_campaign import ROOT

pytestmark = pytest.mark.slow  # each runs the workflow's own code for seconds to a minute


def run_benchmark(tmp_path, script: str, *args: str) -> tuple[str, list[dict]]:
    env = {**os.environ, "DETECTION_CAMPAIGN_BENCHMARK_RESULTS": str(tmp_path / "tables")}
    command = [sys.executable, str(ROOT / "benchmarks" / script), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "measured on: " in result.stdout, "every table says the machine"
    table = tmp_path / "tables" / f"{script.removesuffix('.py')}.csv"
    return result.stdout, list(csv.DictReader(open(table)))


def test_planning_quick(tmp_path):
    out, rows = run_benchmark(tmp_path, "planning.py", "--quick")
    (row,) = rows
    assert row["configurations"] == "2" and int(row["jobs"]) > 10 and int(row["edges"]) > int(row["jobs"])
    assert float(row["ratio"]) > 0 and float(row["memory_ratio"]) > 0


def test_cleaning_quick(tmp_path, coco128):
    out, rows = run_benchmark(tmp_path, "cleaning.py", "--quick", "--coco", str(coco128))
    assert [row["task"] for row in rows][:2] == ["clean_upload", "ultralytics label cache scan"], rows
    assert "ratio of medians" in out


def test_detect_memory_quick(tmp_path):
    out, rows = run_benchmark(tmp_path, "detect_memory.py", "--quick")
    (row,) = rows
    assert row["frames"] == "60" and float(row["peak_rss_mb"]) > 0


def test_phone_photos_quick(tmp_path):
    out, rows = run_benchmark(tmp_path, "phone_photos.py", "--quick")
    assert len(rows) >= 2 and "4 photos of 4032x3024" in out


def test_training_overhead_quick(tmp_path):
    out, rows = run_benchmark(tmp_path, "training_overhead.py", "--quick")
    (row,) = rows
    assert row["epochs"] == "1" and float(row["workflow_s"]) > 0 and float(row["yolo_train_s"]) > 0
    assert "yolo command: train" in out


def test_packing_quick(tmp_path):
    out, rows = run_benchmark(tmp_path, "packing.py", "--quick")
    assert [(row["mode"], row["trainings"]) for row in rows] == [("one after another", "2"), ("packed", "2")]
    assert rows[0]["speed_up"] == "1.0" and float(rows[1]["makespan_s"]) > 0
    if rows[0]["device"] == "CPU rehearsal":
        assert "no GPU figure was measured" in out


def test_incremental_quick(tmp_path):
    out, rows = run_benchmark(tmp_path, "incremental.py", "--quick")
    assert [row["step"] for row in rows] == [
        "bring the demo run up to date first",
        "no-op run",
        "rebuild one figure",
        "change one configuration (epochs -> 2)",
    ]
    jobs = [int(row["jobs"]) for row in rows]
    assert jobs[1:3] == [0, 1] and jobs[3] > 5 and jobs[3] < jobs[0], rows  # its jobs, not the data's


def test_plan_accuracy_quick(tmp_path):
    out, rows = run_benchmark(tmp_path, "plan_accuracy.py", "--quick")
    (row,) = rows
    assert row["config"] == "yolov8n_b16_img64_freeze0" and float(row["predicted_s"]) > 0
    assert float(row["measured_s"]) > float(row["epochs_s"]) > 0 and "probes took" in out  # the job, then its epochs


def test_probe_steps_quick(tmp_path):
    out, rows = run_benchmark(tmp_path, "probe_steps.py", "--quick")
    assert [row["mosaic"] for row in rows] == ["off", "on"]
    for row in rows:
        probed, epochs = float(row["probe_s_per_image"]), [float(s) for s in row["epochs_s_per_image"].split()]
        assert probed > 0 and len(epochs) == 1 and epochs[0] > 0
        assert float(row["error_pct"]) == pytest.approx(
            100 * (probed - epochs[0]) / epochs[0], abs=1.0
        )  # of rounded values


def test_resized_accuracy_quick(tmp_path):
    out, rows = run_benchmark(tmp_path, "resized_accuracy.py", "--quick")
    assert [(row["images"], row["seed"]) for row in rows] == [
        ("full size (128 px)", "0"),
        ("full size (128 px)", "1"),
        ("copy at 64 px", "0"),
        ("copy at 64 px", "1"),
    ]
    # Each training read what its side names: the full-size images, then the copy.
    assert [row["data_file"] for row in rows] == ["results/dataset/dataset.yaml"] * 2 + [
        "results/dataset/resized/64/dataset.yaml"
    ] * 2


def test_campaign_eta_quick(tmp_path):
    out, rows = run_benchmark(tmp_path, "campaign_eta.py", "--quick")
    assert [row["progress"].split(" (")[0] for row in rows] == [
        f"{mark} of the epochs" for mark in ("0%", "25%", "50%", "75%")
    ]
    estimated = [row for row in rows if row["error"] != "no estimate"]
    assert rows[0]["error"] != "no estimate", "the probes give an estimate before the first epoch"
    assert estimated and all(0 <= float(row["estimated_left_s"]) and 0 < float(row["real_left_s"]) for row in estimated)


def test_demo_times_reads_every_rule_s_benchmark_files(tmp_path):
    logs = tmp_path / "demo" / "logs"
    now = time.time()
    for rule, name, seconds, ended in (("train", "a", 100, 0), ("train", "b", 50, 100), ("evaluate", "a_val", 10, 110)):
        path = logs / rule / f"{name}.benchmark.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\n{seconds}\t0:00:00\n")
        os.utime(path, (now + ended, now + ended))
    (logs / "clean_dataset.benchmark.tsv").write_text("s\th:m:s\n1.5\t0:00:01\n")
    os.utime(logs / "clean_dataset.benchmark.tsv", (now - 100, now - 100))
    out, rows = run_benchmark(tmp_path, "demo_times.py", "--demo", str(tmp_path / "demo"))
    assert [(row["rule"], row["jobs"], row["total_s"]) for row in rows] == [
        ("train", "2", "150.0"),
        ("evaluate", "1", "10.0"),
        ("clean_dataset", "1", "1.5"),
    ]
    assert "4 jobs; the run's span 212 s" in out  # from clean_dataset's start (-101.5) to evaluate's end (110)
