"""A damaged record is named with its file and line, shown beside the others, and made again by the next run."""

import logging
import shutil
import subprocess
import sys

import pytest

from campaign.core.layout import EPOCH_TABLE, TRAINING_SUMMARY, result_path
from campaign.core.records import DamagedRecord, read_json_lines, read_json_record, set_aside_damaged_records
from campaign.planning.plan import finished_hours
from campaign.reporting.status import config_status, status_table
from campaign.training.attempts import set_aside_damaged_history
from campaign.training.run_folder import TrainingFolder
from tiny_campaign import SCRATCH, SCRATCH_CONFIG, SCRATCH_METRICS, snakemake, workflow_env

CUT_SHORT = '{\n  "batch_used": 16,\n  "epochs_run": 2'  # a copy that stopped half-way


def test_a_record_cut_short_is_named_with_its_file_line_and_column(tmp_path):
    record = tmp_path / "train.json"
    record.write_text(CUT_SHORT)
    with pytest.raises(DamagedRecord) as caught:
        read_json_record(record)
    assert str(caught.value).startswith(f"{record} line 3 column 18: Expecting ',' delimiter; the record is damaged")
    assert "delete it and run again" in str(caught.value)
    record.write_text("[1, 2]")
    with pytest.raises(DamagedRecord, match="holds list, not a record"):
        read_json_record(record)
    record.write_text('{"epochs_run": 2}')
    with pytest.raises(DamagedRecord, match="lacks train_seconds"):
        read_json_record(record, required=("train_seconds",))
    record.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(DamagedRecord, match="byte 8 is not UTF-8 text"):
        read_json_record(record)


def test_a_history_names_its_damaged_line(tmp_path):
    history = tmp_path / "attempts.jsonl"
    history.write_text('{"args_hash": "a", "batch": 16}\n\n{"args_hash": "a", "batch": 8}\n{"args_hash": "a", "ba')
    with pytest.raises(DamagedRecord, match=r"attempts.jsonl line 4 column 20: Unterminated string starting at"):
        read_json_lines(history)
    history.write_text('{"args_hash": "a", "batch": 16}\n{"batch": 8}\n')
    with pytest.raises(DamagedRecord, match=r"line 2: lacks args_hash"):
        read_json_lines(history, required=("args_hash",))


def test_status_shows_every_configuration_and_names_each_damaged_record(tmp_path):
    done, history, job, sound = (TrainingFolder.of(name, tmp_path) for name in "abcd")
    for folder in (done, history, job, sound):
        folder.path.mkdir(parents=True)
    done.summary.write_text(CUT_SHORT)
    history.attempts.write_text('{"args_hash": "a", "batch": 16}\n{"args_hash"')
    job.job_record.write_text('{"host": "server-1", "pid"')
    sound.summary.write_text('{"epochs_run": 4, "batch_used": 16, "device": "0"}')
    statuses = [config_status(tmp_path, name, 4, batch=16) for name in "abcd"]
    assert [s.state for s in statuses] == ["to do", "to do", "to do", "done"]
    table = status_table(statuses)
    assert f"{done.summary} line 3 column 18: Expecting ',' delimiter: the next run makes it again" in table
    assert f"{history.attempts} line 2 column 13: Expecting ':' delimiter" in table
    assert f"{job.job_record} line 1 column 27: Expecting ':' delimiter" in table
    assert "1 done" in table and "3 to do" in table


def test_the_plan_counts_a_training_with_a_damaged_record_as_not_finished(tmp_path):
    from campaign.core.configurations import expand_campaign

    configs = expand_campaign(
        {
            "defaults": {"model": "yolov8n", "batch": 8, "imgsz": 64, "freeze": 0, "epochs": 2},
            "matrix": {"freeze": [0, 10]},
        }
    )
    damaged, sound = (TrainingFolder.of(name, tmp_path) for name in sorted(configs))
    for folder in (damaged, sound):
        folder.path.mkdir(parents=True)
    damaged.summary.write_text(CUT_SHORT)
    sound.summary.write_text('{"train_seconds": 7200}')
    assert finished_hours(configs, tmp_path) == {sound.path.name: 2.0}


def test_a_damaged_record_is_set_aside_before_planning_and_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    record = tmp_path / "results/train/a/train.json"
    record.parent.mkdir(parents=True)
    record.write_text(CUT_SHORT)
    (tmp_path / "results/train/b").mkdir()
    (tmp_path / "results/train/b/train.json").write_text("{}")
    said = set_aside_damaged_records(["results/train/*/train.json"])
    assert said == [
        "Damaged record: results/train/a/train.json line 3 column 18: Expecting ',' delimiter; set aside as "
        "train.json.damaged, so the job that writes it runs again"
    ]
    assert not record.exists() and record.with_name("train.json.damaged").read_text() == CUT_SHORT
    assert (tmp_path / "results/train/b/train.json").exists()


def test_a_training_sets_a_damaged_history_aside_and_says_so(tmp_path, caplog):
    folder = TrainingFolder.of("a", tmp_path)
    folder.path.mkdir(parents=True)
    folder.attempts.write_text('{"args_hash": "a", "batch": 16}\n{"args_')
    set_aside_damaged_history(folder, logging.getLogger("job"))
    assert not folder.attempts.exists() and folder.attempts.with_name(folder.attempts.name + ".damaged").exists()
    assert "Damaged record: " in caplog.text and "the training goes on without its earlier attempts" in caplog.text


@pytest.mark.slow
def test_the_next_run_makes_a_damaged_record_again_without_training_again(tmp_path, scratch_campaign):
    """SCRATCH's finished campaign, copied: its validation metrics cut short, then its train.json."""
    workdir = tmp_path / "campaign"
    shutil.copytree(scratch_campaign, workdir, symlinks=True)
    metrics = workdir / SCRATCH_METRICS
    metrics.write_text(metrics.read_text()[:25])
    plan = snakemake(workdir, "-n", str(SCRATCH_METRICS), config=SCRATCH)
    assert f"Damaged record: {SCRATCH_METRICS} line" in plan.stderr
    assert "set aside as metrics.json.damaged" in plan.stderr
    assert "rule evaluate:" in plan.stdout and "rule train:" not in plan.stdout

    summary = result_path(TRAINING_SUMMARY, cfg=SCRATCH_CONFIG)
    epochs = (workdir / result_path(EPOCH_TABLE, cfg=SCRATCH_CONFIG)).read_text()
    (workdir / summary).write_text((workdir / summary).read_text()[:40])
    status = subprocess.run(
        [sys.executable, "-m", "campaign", "status", "--configfile", "config.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=workflow_env(),
        timeout=300,
    )
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
    assert f"{summary} line 4 column 7: Unterminated string starting at: the next run makes it again" in status.stdout

    plan = snakemake(workdir, "-n", str(summary), config=SCRATCH)
    assert f"Damaged record: {summary} line 4 column 7: Unterminated string starting at; set aside as " in plan.stderr
    assert "rule train:" in plan.stdout
    snakemake(workdir, "--cores", "2", str(summary), config=SCRATCH)
    assert read_json_record(workdir / summary)["epochs_run"] == 20
    # Collected from its run folder: not one epoch trained again.
    assert (workdir / result_path(EPOCH_TABLE, cfg=SCRATCH_CONFIG)).read_text() == epochs
