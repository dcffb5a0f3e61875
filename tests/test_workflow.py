"""End to end: the real workflow as a `snakemake` subprocess on a small campaign that learns (LEARNING)."""

import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from onnx import checker as onnx_checker
from PIL import Image

from campaign.core.layout import EPOCH_TABLE, RESIZED_DATASET_YAML, result_path
from campaign.evaluation.validation import evaluate
from campaign.reporting.figures import device_intervals
from tiny_campaign import (
    LEARNED_MAP50_FLOOR,
    LEARNING,
    ROOT,
    SCRATCH,
    SCRATCH_CONFIG,
    SCRATCH_METRICS,
    TINY,
    install_learned_weights,
    planned_jobs,
    snakemake,
)

pytestmark = pytest.mark.slow  # the real workflow end to end

CONFIGS = ["yolov8n_b16_img96_freeze0", "yolov8n_b16_img96_freeze10", "yolov8n_b16_img96_freeze10_seed1"]
GROUPS = CONFIGS[:2]  # the frozen configuration trained with two seeds
FIGURES = [
    "campaign_timeline",
    "imgsz_study",
    "dataset_overview",
    "label_analysis",
    "map_by_config",
    "accuracy_vs_latency",
    "training_curves",
    "per_class_ap",
]


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, learned_weights):
    workdir = tmp_path_factory.mktemp("campaign")
    install_learned_weights(learned_weights, workdir)
    snakemake(workdir, "--cores", "2", config=LEARNING)
    return workdir


def test_the_workflows_own_training_learns_from_random_weights(scratch_campaign, tmp_path, monkeypatch):
    """SCRATCH's yolov8n, trained by the workflow from random weights, detects the objects its start cannot."""
    imgsz = SCRATCH["campaign"]["defaults"]["imgsz"]
    dataset = scratch_campaign / result_path(RESIZED_DATASET_YAML, imgsz=imgsz)
    # Its start: the same network (3 classes) with random weights, validated as the workflow validates.
    import torch
    from ultralytics.nn.tasks import DetectionModel

    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics-settings"))
    torch.manual_seed(0)
    torch.save({"model": DetectionModel("yolov8n.yaml", nc=3, verbose=False)}, tmp_path / "start.pt")
    start = evaluate(tmp_path / "start.pt", dataset, "val", imgsz, 16, "cpu", tmp_path / "val", plots=False)

    trained = json.loads((scratch_campaign / SCRATCH_METRICS).read_text())
    assert start.box.map50 < 0.01
    assert trained["split"] == "val" and trained["imgsz"] == imgsz
    assert trained["mAP50"] >= LEARNED_MAP50_FLOOR, trained
    # Learnt over the epochs, not at the last one by chance: the run's own validations rise to it.
    with open(scratch_campaign / result_path(EPOCH_TABLE, cfg=SCRATCH_CONFIG)) as table:
        epochs = [float(row["metrics/mAP50(B)"]) for row in csv.DictReader(table)]
    assert len(epochs) == SCRATCH["campaign"]["defaults"]["epochs"]
    assert epochs[0] < 0.01 and max(epochs[-3:]) >= LEARNED_MAP50_FLOOR, epochs


def test_every_output_exists_with_real_content(campaign):
    rows = list(csv.DictReader(open(campaign / "results/summary/metrics.csv")))
    assert [row["config"] for row in rows] == CONFIGS
    for row in rows:
        for split in ("val", "test"):
            assert LEARNED_MAP50_FLOOR < float(row[f"{split}_mAP50"]) <= 1.0, (row["config"], split)
        assert float(row["latency_ms"]) > 0
        assert row["epochs_run"] == "1" and row["batch_used"] == "16"
    for name in CONFIGS:
        metrics = json.loads((campaign / f"results/eval/{name}/test/metrics.json").read_text())
        assert set(metrics) >= {"precision", "recall", "mAP50", "mAP50-95"}
        per_class = list(csv.DictReader(open(campaign / f"results/eval/{name}/test/per_class.csv")))
        assert [r["class"] for r in per_class] == ["glasses", "lentils", "ring"]
        # The overall figure is the mean over the classes, as Ultralytics computes it.
        assert abs(sum(float(r["mAP50"]) for r in per_class) / 3 - metrics["mAP50"]) < 1e-9
        assert (campaign / f"results/train/{name}/best.pt").stat().st_size > 100_000
        speed = list(csv.DictReader(open(campaign / f"results/speed/{name}.csv")))
        assert sorted((r["format"], r["measure"], r["batch"]) for r in speed) == [
            (f, measure, b)
            for f in ("onnx", "pytorch")
            for measure, b in (("end_to_end", "1"), ("model", "1"), ("model", "4"))
        ]
        # The exported model, run by ONNX Runtime, keeps the accuracy of the PyTorch one it came from.
        onnx = next(r for r in speed if r["format"] == "onnx")
        assert abs(float(onnx["mAP50-95"]) - metrics["mAP50-95"]) < 0.02 and float(onnx["latency_ms"]) > 0
        onnx_checker.check_model(str(campaign / f"results/export/{name}/best.onnx"))
        events = list((campaign / f"results/train/{name}/run").glob("events.out.tfevents.*"))
        assert events, "no TensorBoard log"
        samples = list(csv.DictReader(open(campaign / f"results/train/{name}/monitor.csv")))
        assert samples and {row["device"] for row in samples} == {"cpu"}
        # The monitor covers the whole training, whatever Ultralytics does to its run folder.
        train = json.loads((campaign / f"results/train/{name}/train.json").read_text())
        covered = float(samples[-1]["time"]) - float(samples[0]["time"])
        assert covered >= 0.9 * train["train_seconds"], (name, covered, train["train_seconds"])
        drawn = device_intervals({name: campaign / f"results/train/{name}/monitor.csv"})
        assert (drawn["end"] - drawn["start"]).sum() >= 0.9 * train["train_seconds"], "the timeline's bar"
        assert list((campaign / f"results/train/{name}/run.monitor").glob("events.out.tfevents.*"))
    for figure in FIGURES:
        png = campaign / f"results/figures/{figure}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    video = campaign / "results/detect/yolov8n_b16_img96_freeze0/table.mp4"
    assert video.read_bytes()[4:8] == b"ftyp" and video.stat().st_size > 10_000
    sheet = campaign / "results/detect/yolov8n_b16_img96_freeze0/table.png"
    assert sheet.read_bytes()[:4] == b"\x89PNG"
    study = list(csv.DictReader(open(campaign / f"results/study/{CONFIGS[0]}.csv")))
    assert [row["imgsz"] for row in study] == ["64", "96", "128"]
    assert float(study[1]["mAP50"]) > LEARNED_MAP50_FLOOR
    # Up to the training size the study reads the shrunk copy; above it, the full-size images.
    study_log = (campaign / f"logs/imgsz_study/{CONFIGS[0]}.log").read_text()
    assert "imgsz 96 from results/dataset/resized/96/dataset.yaml" in study_log, study_log
    assert "imgsz 128 from results/dataset/dataset.yaml" in study_log, study_log
    # Every job of a configuration read the copy shrunk to its size, made once.
    for record in ("train/{}/provenance.json", "eval/{}/test/provenance.json", "speed/{}.provenance.json"):
        provenance = json.loads((campaign / "results" / record.format(CONFIGS[0])).read_text())
        assert provenance["data_file"] == "results/dataset/resized/96/dataset.yaml", record
    shrunk = sorted((campaign / "results/dataset/resized/96/images").glob("[!.]*"))  # not Snakemake's timestamp
    assert len(shrunk) == len(list((campaign / "results/dataset/images").glob("[!.]*")))
    assert {max(Image.open(path).size) for path in shrunk} == {96}  # the demo's images are 128 px
    markdown = (campaign / "results/summary/metrics.md").read_text()
    assert CONFIGS[0] in markdown and "test_mAP50" in markdown
    for row in rows:
        assert float(row["test_mAP50_low"]) <= float(row["test_mAP50"]) <= float(row["test_mAP50_high"])
        assert float(row["test_mAP50_high"]) - float(row["test_mAP50_low"]) > 0.01, "an interval of a few dozen images"
        assert int(row["parameters"]) > 2_000_000 and float(row["gflops_640"]) > 5
        assert float(row["onnx_latency_ms"]) > 0
    groups = list(csv.DictReader(open(campaign / "results/summary/groups.csv")))
    assert [(g["group"], g["runs"]) for g in groups] == [(GROUPS[0], "1"), (GROUPS[1], "2")]
    seeds = [float(row["test_mAP50"]) for row in rows[1:]]
    assert float(groups[1]["test_mAP50"]) == pytest.approx(sum(seeds) / 2, abs=1e-4)
    assert groups[0]["test_mAP50_seed_sd"] == "nan" and float(groups[1]["test_mAP50_seed_sd"]) >= 0
    (finding,) = csv.DictReader(open(campaign / "results/summary/findings.csv"))
    assert (finding["argument"], finding["first"], finding["second"]) == ("freeze", "0", "10")
    assert (finding["first_group"], finding["second_runs"]) == (GROUPS[0], "2")
    assert float(finding["low"]) <= float(finding["difference"]) <= float(finding["high"])
    assert finding["excludes_zero"] == str(float(finding["low"]) > 0 or float(finding["high"]) < 0)
    assert "<title>Findings: mAP50-95 on test</title>" in (campaign / "results/summary/findings.html").read_text()
    for split in ("train", "val", "test"):
        assert (campaign / f"results/dataset/{split}.txt").read_text().count("./images/") > 10


def saved_weights(checkpoint: Path) -> dict:
    """A saved checkpoint's network weights by name (its EMA model, or the model once stripped)."""
    import torch

    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return (saved.get("ema") or saved["model"]).state_dict()


def test_the_frozen_backbone_keeps_its_starting_weights_bit_for_bit(campaign, learned_weights):
    """freeze: 10 on yolov8n: the backbone (modules 0-9) as in the starting checkpoint, the head trained."""
    start = saved_weights(next(learned_weights.glob("*.pt")))
    for name, frozen in (("yolov8n_b16_img96_freeze10", 10), ("yolov8n_b16_img96_freeze0", 0)):
        trained = saved_weights(campaign / f"results/train/{name}/best.pt")
        unchanged = {key for key in start if key in trained and trained[key].equal(start[key])}
        backbone = {key for key in start if int(key.split(".")[1]) < 10}
        # Convolution kernels: a few small steps move them all beyond half precision's resolution, where a
        # batch-norm scale may not move at all (the checkpoints are saved in half precision).
        kernels = {key for key in start if key.endswith("conv.weight")}
        if frozen:
            assert backbone <= unchanged, sorted(backbone - unchanged)[:5]  # running statistics included
        else:
            assert len(backbone & kernels & unchanged) < len(backbone & kernels) / 2, "fine-tuned: the backbone moved"
        head = kernels - backbone
        assert len(head - unchanged) > len(head) / 2, f"{name}: the head trained"


def test_every_latency_says_its_device_and_input_and_one_timing_serves_one_network(campaign):
    """The three configurations (freeze 0, freeze 10 with two seeds) are one network: timed once, on the first."""
    assert sorted(path.name for path in (campaign / "results/latency").glob("*.csv")) == [f"{CONFIGS[0]}.csv"]
    timing = list(csv.DictReader(open(campaign / f"results/latency/{CONFIGS[0]}.csv")))
    for name in CONFIGS:
        speed = list(csv.DictReader(open(campaign / f"results/speed/{name}.csv")))
        assert {row["timed_config"] for row in speed} == {CONFIGS[0]}
        assert [row["latency_ms"] for row in speed] == [row["latency_ms"] for row in timing]
        for row in speed:
            assert row["device"] == "cpu" and row["device_name"]  # no GPU here: PyTorch on the CPU too
            assert row["exclusive"] in ("True", "False") and float(row["other_cores"]) >= 0
            assert float(row["latency_ms_p10"]) <= float(row["latency_ms"]) <= float(row["latency_ms_p90"])
            assert int(row["repeats"]) >= 5
            if row["measure"] == "model":  # the shrunk copy at the training's size, decoded before timing
                assert row["input"] == "decoded test image, median 96x96 px", row["input"]
            else:  # the cleaned full-size photo, from its file
                assert row["measure"] == "end_to_end" and row["input"].startswith("photo file, median ")
                assert row["input"] != "photo file, median 96x96 px"
    metrics = list(csv.DictReader(open(campaign / "results/summary/metrics.csv")))
    assert all(float(row["end_to_end_ms"]) > 0 and row["speed_input"] for row in metrics)


def test_configurations_differing_only_in_freeze_are_one_network_at_inference(campaign):
    """Why one timing serves them: freeze changes which weights learn, not the network that infers.

    Same layers in the same order, the same shape of every tensor: the same operations on the
    same sizes, so the same latency (timed apart, two such models differ only by the machine's noise;
    benchmarks time that, a test would only time the machine).
    """
    import torch

    def network(name):
        model = torch.load(campaign / f"results/train/{name}/best.pt", map_location="cpu", weights_only=False)["model"]
        layers = [type(module).__name__ for module in model.modules()]
        return layers, {key: tuple(value.shape) for key, value in model.state_dict().items()}

    (layers_a, shapes_a), (layers_b, shapes_b) = network(CONFIGS[0]), network(CONFIGS[1])
    assert len(layers_a) > 100 and layers_a == layers_b
    assert shapes_a == shapes_b


def test_a_complete_run_leaves_nothing_to_do(campaign):
    output = snakemake(campaign, "-n", config=LEARNING)
    assert "Nothing to be done" in output.stdout + output.stderr


def reversed_keys(value):
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    return value


def test_reordering_keys_in_the_config_changes_nothing(campaign):
    (campaign / "config.yaml").write_text(yaml.safe_dump(reversed_keys(LEARNING), sort_keys=False))
    output = snakemake(campaign, "-n")
    assert "Nothing to be done" in output.stdout + output.stderr, output.stdout[-3000:]
    snakemake(campaign, "-n", config=LEARNING)  # back to the usual file for the next tests


def test_editing_one_configuration_reruns_only_its_jobs(campaign):
    """An argument changed in place (same name): exactly that configuration's jobs and the summaries, nothing else."""
    edited = yaml.safe_load(yaml.safe_dump(LEARNING))
    edited["campaign"]["overrides"].append({"match": {"freeze": 10}, "set": {"args": {"lr0": 0.02}}})
    jobs = planned_jobs(campaign, edited)
    per_config = [(rule, w) for rule, w in jobs if w.startswith("cfg=")]
    assert {w.split(",")[0] for _, w in per_config} == {f"cfg={CONFIGS[1]}", f"cfg={CONFIGS[2]}"}  # both seeds
    each = ["bootstrap", "bootstrap", "evaluate", "evaluate", "export", "imgsz_study", "speed", "train"]
    assert sorted(rule for rule, _ in per_config) == sorted(each * 2)
    shared = {rule for rule, w in jobs if not w.startswith("cfg=")}
    assert {"summary_table", "findings"} <= shared
    assert not shared & {"clean_dataset", "split_dataset", "resize_dataset", "pretrain", "detect"}


def test_changing_a_named_argument_gives_a_new_configuration(campaign):
    """patience is part of the name where it differs from the default: a new configuration, the old one untouched."""
    edited = yaml.safe_load(yaml.safe_dump(LEARNING))
    edited["campaign"]["overrides"].append({"match": {"freeze": 10}, "set": {"patience": 50}})
    jobs = planned_jobs(campaign, edited)
    trained = sorted(w for rule, w in jobs if rule == "train")
    assert trained == ["cfg=yolov8n_b16_img96_freeze10_pat50", "cfg=yolov8n_b16_img96_freeze10_pat50_seed1"]
    assert not any(CONFIGS[0] in w for _, w in jobs)
    assert "summary_table" in {rule for rule, _ in jobs}


def test_adding_a_configuration_leaves_the_others_untouched(campaign):
    extended = yaml.safe_load(yaml.safe_dump(LEARNING))
    extended["campaign"]["extra"] = [{"model": "yolov8n", "batch": 8, "pretrained": False}]
    jobs = planned_jobs(campaign, extended)
    assert [w for rule, w in jobs if rule == "train"] == ["cfg=yolov8n_b8_img96_freeze0_scratch"]
    assert not any(name in w for _, w in jobs for name in CONFIGS)


def test_same_bytes_rerun_nothing_below_the_checksum_limit_and_a_touched_checkpoint_reruns(campaign):
    """Snakemake compares inputs under 1 MB by checksum, larger ones (best.pt) by time, as README says."""
    split = campaign / "results/dataset/val.txt"
    split.write_bytes(split.read_bytes())  # a newer file with the same bytes
    output = snakemake(campaign, "-n", config=LEARNING)
    assert "Nothing to be done" in output.stdout + output.stderr
    best = campaign / f"results/train/{CONFIGS[0]}/best.pt"
    assert best.stat().st_size > 1_000_000
    before = best.stat()
    os.utime(best)  # touched: newer than every result made from it, same bytes
    try:
        jobs = planned_jobs(campaign, LEARNING)
    finally:
        os.utime(best, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert ("evaluate", f"cfg={CONFIGS[0]}, split=val") in jobs and ("train", f"cfg={CONFIGS[0]}") not in jobs


def work(jobs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The jobs that make something (the `all` target aside)."""
    return [job for job in jobs if job[0] != "all"]


def test_a_video_copied_into_a_source_folder_gets_its_detections_and_nothing_else_runs(campaign):
    videos = campaign / "videos"
    videos.mkdir()
    with_folder = yaml.safe_load(yaml.safe_dump(LEARNING))
    with_folder["detect"]["sources"].append(str(videos))
    try:
        assert work(planned_jobs(campaign, with_folder)) == [], "an empty folder waits for videos"
        shutil.copyfile(ROOT / "demo" / "videos" / "table.mp4", videos / "hall.mp4")
        assert work(planned_jobs(campaign, with_folder)) == [("detect", f"cfg={CONFIGS[0]}, source=hall")]
        snakemake(campaign, "--cores", "1", config=with_folder)
        assert (campaign / "results" / "detect" / CONFIGS[0] / "hall.mp4").stat().st_size > 0
        assert work(planned_jobs(campaign, with_folder)) == []
    finally:
        snakemake(campaign, "-n", config=LEARNING)  # back to the usual file for the next tests


def test_one_figure_is_rebuilt_alone_by_naming_its_file(campaign):
    figure = campaign / "results/figures/per_class_ap.png"
    figure.unlink()
    output = snakemake(campaign, "--cores", "1", "results/figures/per_class_ap.png", config=LEARNING)
    assert figure.is_file()
    assert re.search(r"figure\s+1\s*\n\s*total\s+1", output.stdout + output.stderr)


@pytest.fixture(scope="module")
def report(campaign) -> Path:
    snakemake(campaign, "--report", "report.html", config=LEARNING)
    return campaign / "report.html"


def test_report_is_built(report):
    html = report.read_text(errors="replace")
    assert "per_class_ap.png" in html and "metrics.csv" in html


def open_section(browser, report: Path, *section: str):
    """A page of the report, navigated to one (sub)category by clicking through its menu."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(report.as_uri())
    for name in section:
        page.get_by_role("link", name=name, exact=True).click()
    return page


def figures_shown(browser, report: Path, *section: str) -> set[str]:
    """File names of the PNG figures the report shows, one click on each result's eye in a section."""
    page = open_section(browser, report, *section)
    shown = set()
    rows = page.locator("tr:has([iconname=eye])")
    for index in range(rows.count()):
        rows.nth(index).locator("[iconname=eye]").click()
        # Rendered means decoded with a real size, not merely present in the page.
        shown |= set(
            page.evaluate(
                """() => [...document.images]
                    .filter(i => i.complete && i.naturalWidth > 100 && i.getBoundingClientRect().width > 100)
                    .map(i => (i.src.match(/filename=([^;,]+)/) || [])[1])
                    .filter(Boolean)"""
            )
        )
    page.close()
    return shown


def test_the_report_shows_its_figures_in_headless_chromium(browser, report):
    comparison = {"map_by_config", "accuracy_vs_latency", "training_curves", "per_class_ap", "campaign_timeline"}
    assert {f"{name}.png" for name in comparison | {"imgsz_study"}} <= figures_shown(browser, report, "2. Comparison")
    dataset = figures_shown(browser, report, "1. Dataset")
    assert {"dataset_overview.png", "label_analysis.png"} <= dataset
    # Per configuration: the first freeze value is selected, one row per plot.
    evaluation = figures_shown(browser, report, "3. Evaluation", "test")
    assert {"confusion.png", "pr_curve.png", "f1_curve.png"} <= evaluation
    assert "table.png" in figures_shown(browser, report, "4. Detections")


def test_the_comparison_category_opens_with_the_findings(browser, report):
    page = open_section(browser, report, "2. Comparison")
    rows = page.locator("tr:has([iconname=eye])")
    first = rows.nth(0).inner_text()
    page.close()
    assert "findings" in first, first


def test_the_comparison_table_sorts_by_a_clicked_column_in_the_report(browser, report):
    page = open_section(browser, report, "2. Comparison")
    page.locator("tr", has_text="metrics (sortable)").locator("[iconname=eye]").click()
    page.wait_for_selector("iframe")
    table = next(frame for frame in page.frames if "filename=metrics.html" in frame.url)
    headers = table.eval_on_selector_all("th", "cells => cells.map(c => c.textContent)")
    read = f"tbody tr td:nth-child({headers.index('freeze') + 1})"
    values = "cells => cells.map(c => Number(c.dataset.value))"

    header = table.locator("th", has_text="freeze")
    header.click()
    ascending = table.eval_on_selector_all(read, values)
    header.click()
    descending = table.eval_on_selector_all(read, values)
    page.close()
    assert ascending == [0, 10, 10] and descending == [10, 10, 0]


PROVENANCE_FIELDS = {
    "config",
    "args",
    "args_hash",
    "dataset_hash",
    "weights_hash",
    "software",
    "git",
    "device",
    "device_names",
    "started",
    "finished",
}


def test_every_result_has_its_provenance(campaign):
    paths = [campaign / f"results/train/{name}/provenance.json" for name in CONFIGS]
    paths += [
        campaign / f"results/eval/{name}/{split}/provenance.json" for name in CONFIGS for split in ("val", "test")
    ]
    paths += [campaign / f"results/speed/{name}.provenance.json" for name in CONFIGS]
    paths += [campaign / f"results/export/{name}/onnx.provenance.json" for name in CONFIGS]
    records = [json.loads(path.read_text()) for path in paths]
    for path, record in zip(paths, records):
        assert PROVENANCE_FIELDS <= set(record), path
        assert record["software"]["ultralytics"] and record["software"]["torch"], path
        assert len(record["dataset_hash"]) == 16, path
        assert set(record["git"]) == {"commit", "dirty"}, path
    assert len({r["dataset_hash"] for r in records}) == 1
    trained = {r["config"]: r for r in records[: len(CONFIGS)]}
    assert trained[CONFIGS[0]]["args_hash"] != trained[CONFIGS[1]]["args_hash"]
    assert trained[CONFIGS[1]]["weights_hash"], "the frozen configuration starts from pretrained weights"
    summary = list(csv.DictReader(open(campaign / "results/summary/metrics.csv")))
    assert [row["args_hash"] for row in summary] == [trained[name]["args_hash"] for name in CONFIGS]


def comparable_metrics(workdir: Path, configs: list[str]) -> dict[str, object]:
    """Everything a rerun must reproduce: data, splits, per-epoch metrics, evaluation."""
    found: dict[str, object] = {}
    for name in ("manifest.csv", "train.txt", "val.txt", "test.txt", "dataset.yaml"):
        found[name] = (workdir / "results/dataset" / name).read_bytes()
    for name in configs:
        rows = list(csv.DictReader(open(workdir / f"results/train/{name}/results.csv")))
        found[f"{name}/results.csv"] = [{k: v for k, v in row.items() if k.strip() != "time"} for row in rows]
        for split in ("val", "test"):
            metrics = json.loads((workdir / f"results/eval/{name}/{split}/metrics.json").read_text())
            found[f"{name}/{split}"] = {k: metrics[k] for k in ("precision", "recall", "mAP50", "mAP50-95")}
            found[f"{name}/{split}/per_class"] = (workdir / f"results/eval/{name}/{split}/per_class.csv").read_bytes()
    return found


def splits_listed(workdir: Path) -> dict[str, str]:
    """Image -> split, from the split lists the workflow wrote."""
    return {
        line: name
        for name in ("train", "val", "test")
        for line in (workdir / "results" / "dataset" / f"{name}.txt").read_text().splitlines()
    }


def test_the_split_lock_keeps_every_image_in_its_split_as_uploads_grow(tmp_path):
    raw = tmp_path / "raw"
    for group in ("alpha", "charlie"):
        shutil.copytree(ROOT / "demo" / "raw" / group, raw / group)
    # A class_map may name only groups that have uploaded: delta's comes with delta.
    config = {**TINY, "dataset": {**TINY["dataset"], "raw": str(raw), "class_map": {}}}
    snakemake(tmp_path, "--cores", "2", "--until", "split_dataset", config=config)
    first = splits_listed(tmp_path)
    by_group = int(re.search(r"group's own split: (\d+)", (tmp_path / "logs" / "split_dataset.log").read_text())[1])
    assert by_group < len(first)  # charlie gave no split of its own
    lock = tmp_path / "splits.lock.csv"
    assert sorted(row["split"] for row in csv.DictReader(lock.open())) == sorted(first.values())

    for group in ("bravo", "delta"):  # the groups that upload late
        shutil.copytree(ROOT / "demo" / "raw" / group, raw / group)
    config = {**TINY, "dataset": {**TINY["dataset"], "raw": str(raw)}}
    snakemake(tmp_path, "--cores", "2", "--until", "split_dataset", config=config)
    grown = splits_listed(tmp_path)
    assert len(grown) > len(first)
    assert {image: grown[image] for image in first} == first
    log = (tmp_path / "logs" / "split_dataset.log").read_text()
    assert f"by the split lock: {len(first) - by_group}," in log

    shutil.rmtree(tmp_path / "results")  # results are derived; the lock is what decides
    snakemake(tmp_path, "--cores", "2", "--until", "split_dataset", config=config)
    assert splits_listed(tmp_path) == grown


def test_a_rerun_from_scratch_reproduces_data_and_metrics(campaign, learned_weights, tmp_path):
    install_learned_weights(learned_weights, tmp_path)
    # What the comparison reads: the data, the trainings and their evaluations (no exports, speed or studies),
    # of one configuration fine-tuned and one frozen (the second seed of the frozen one runs the same code).
    rerun = CONFIGS[:2]
    targets = [f"results/eval/{name}/{split}/metrics.json" for name in rerun for split in ("val", "test")]
    snakemake(tmp_path, "--cores", "2", *targets, config=LEARNING)
    first, second = comparable_metrics(campaign, rerun), comparable_metrics(tmp_path, rerun)
    assert first.keys() == second.keys()
    assert all(first[f"{name}/{split}"]["mAP50"] > LEARNED_MAP50_FLOOR for name in rerun for split in ("val", "test"))
    for key in first:
        assert first[key] == second[key], f"{key} differs between two runs on the same inputs"


def test_metrics_equal_what_ultralytics_val_gives_on_the_same_weights(campaign):
    """`yolo val` on the best weights and the test split reproduces the stored metrics."""
    script = (
        "import json, sys\n"
        "from ultralytics import YOLO\n"
        "metrics = YOLO(sys.argv[1]).val(data=sys.argv[2], split='test', batch=16, device='cpu', plots=False)\n"
        "box = metrics.box\n"
        "print(json.dumps({'precision': box.mp, 'recall': box.mr, 'mAP50': box.map50, 'mAP50-95': box.map}))\n"
    )
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(campaign / "yolo-val-settings")}
    for name in CONFIGS:
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                script,
                str(campaign / f"results/train/{name}/best.pt"),
                str(campaign / "results/dataset/dataset.yaml"),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=campaign,  # Ultralytics writes its val plots under ./runs
            check=True,
        )
        expected = json.loads(result.stdout.strip().splitlines()[-1])
        stored = json.loads((campaign / f"results/eval/{name}/test/metrics.json").read_text())
        assert stored["mAP50"] > LEARNED_MAP50_FLOOR, "a network that detects nothing proves nothing here"
        # The bootstrap recomputes the point estimate from the stored per-image matches: the same number.
        intervals = json.loads((campaign / f"results/eval/{name}/test/intervals.json").read_text())
        for key in ("precision", "recall", "mAP50", "mAP50-95"):
            assert abs(stored[key] - expected[key]) < 1e-9, key
            assert abs(intervals[key]["value"] - expected[key]) < 1e-9, key
        for key in ("mAP50", "mAP50-95"):
            assert intervals[key]["low"] <= intervals[key]["value"] <= intervals[key]["high"], key


def test_a_yolo26_configuration_trains_evaluates_and_exports(tmp_path):
    """Ultralytics 8.4's own family (NMS-free) end to end: trained, evaluated with intervals, timed as ONNX."""
    config = copy.deepcopy(TINY)
    config["pretrain"] = {"models": []}
    config["campaign"] = {"defaults": {**TINY["campaign"]["defaults"], "model": "yolo26n", "pretrained": False}}
    config["speed"]["formats"] = ["pytorch", "onnx"]
    config["detect"] = {"configs": [], "sources": []}
    name = "yolo26n_b16_img64_freeze0"
    targets = [f"results/speed/{name}.csv", f"results/eval/{name}/test/intervals.json"]
    snakemake(tmp_path, "--cores", "2", *targets, config=config)
    train = json.loads((tmp_path / f"results/train/{name}/train.json").read_text())
    assert train["epochs_run"] == 1 and train["parameters"] > 2_000_000 and train["gflops_640"] > 4
    speed = list(csv.DictReader(open(tmp_path / f"results/speed/{name}.csv")))
    assert {row["format"] for row in speed} == {"pytorch", "onnx"}
    onnx_checker.check_model(str(tmp_path / f"results/export/{name}/best.onnx"))
    intervals = json.loads((tmp_path / f"results/eval/{name}/test/intervals.json").read_text())
    assert intervals["images"] > 10 and intervals["resamples"] == 1000
