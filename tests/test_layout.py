"""Files a rule hands its script, paired with their configurations, and the training folder's side files."""

from pathlib import Path

import pytest

from campaign.core.layout import by_config, by_config_and_split
from campaign.training.run_folder import TrainingFolder


def test_files_are_paired_with_the_configuration_each_names():
    names = ["yolov8n_b16", "yolov8n_b16_seed1"]
    files = ["results/train/yolov8n_b16/train.json", "results/train/yolov8n_b16_seed1/train.json"]
    assert by_config(files, names) == {name: Path(path) for name, path in zip(names, files)}
    speed = ["results/speed/yolov8n_b16.csv", "results/speed/yolov8n_b16_seed1.csv"]
    assert by_config(speed, names)["yolov8n_b16_seed1"] == Path(speed[1])


def test_a_list_out_of_order_is_an_error_not_a_mix_up():
    names = ["yolov8n_b16", "yolov8n_b16_seed1"]
    with pytest.raises(
        ValueError, match="results/speed/yolov8n_b16_seed1.csv is not a file of configuration yolov8n_b16"
    ):
        by_config(["results/speed/yolov8n_b16_seed1.csv", "results/speed/yolov8n_b16.csv"], names)
    with pytest.raises(ValueError, match="1 files for 2 configurations"):
        by_config(["results/speed/yolov8n_b16.csv"], names)


def test_files_by_configuration_then_split():
    files = [f"results/eval/{name}/{split}/metrics.json" for name in ("a", "b") for split in ("val", "test")]
    paired = by_config_and_split(files, ["a", "b"], ["val", "test"])
    assert paired["b", "val"] == Path("results/eval/b/val/metrics.json")
    with pytest.raises(ValueError, match="not a file of configuration a on test"):
        by_config_and_split(files, ["a", "b"], ["test", "val"])


def test_a_pretraining_keeps_its_side_files_under_its_own_run_name():
    training, pretraining = TrainingFolder.of("cfg"), TrainingFolder.around(Path("results/pretrain/yolov8n_run"))
    assert training.attempts == Path("results/train/cfg/run.attempts.jsonl")
    assert pretraining.attempts == Path("results/pretrain/yolov8n_run.attempts.jsonl")
    assert pretraining.live_monitor == Path("results/pretrain/yolov8n_run.monitor/samples.csv")


def rule_benchmarks() -> dict[str, str]:
    """Each rule's `benchmark:` path as rules/*.smk write it."""
    import re

    found = {}
    for smk in sorted((Path(__file__).parents[1] / "rules").glob("*.smk")):
        text = smk.read_text()
        for match in re.finditer(r"^\s*rule (\w+):\n(.*?)(?=^\s*rule |\Z)", text, flags=re.M | re.S):
            benchmark = re.search(r'benchmark:\n\s+"([^"]+)"', match[2])
            if benchmark:
                found[match[1]] = benchmark[1]
    return found


CAMPAIGN = {"defaults": {"model": "yolov8n", "batch": 16, "imgsz": 64, "freeze": 0, "epochs": 1}}


def test_every_benchmark_is_where_the_status_page_and_plan_look_for_it():
    """logs/<rule>/<its wildcards joined by _>.benchmark.tsv (layout.job_benchmark); a one-job rule's logs/<rule>."""
    import re

    from campaign.core.layout import job_benchmark
    from tiny_campaign import TINY, resolved

    benchmarks = rule_benchmarks()
    assert {"train", "evaluate", "latency", "speed", "pretrain", "detect"} <= set(benchmarks)
    for rule, path in benchmarks.items():
        wildcards = re.findall(r"\{(\w+)\}", path)
        job = "_".join("{" + name + "}" for name in wildcards)
        assert path == (str(job_benchmark(rule, job)) if wildcards else f"logs/{rule}.benchmark.tsv"), rule
    # Each job after a training is found where its rule writes it (ResolvedCampaign.benchmark_stems).
    sections = {"speed": {"formats": ["pytorch", "onnx"]}, "detect": TINY["detect"]}
    campaign = resolved(CAMPAIGN, Path("results-of-no-campaign"), **sections)
    name = "yolov8n_b16_img64_freeze0"  # TINY's detect.configs
    for rule, jobs in campaign.jobs_after_training(name).items():
        stems = campaign.benchmark_stems()[name][rule]
        assert jobs and [benchmarks[rule].format(**wildcards) for wildcards in jobs] == [
            str(job_benchmark(rule, stem)) for stem in stems
        ], rule
    # The jobs made once for the campaign, which the status page prices after every other.
    from campaign.core.layout import SUMMARY_FIGURES, campaign_job_benchmarks

    made_once = [benchmarks[rule] for rule in ("dataset_figures", "summary_table", "findings", "campaign_timeline")]
    figures = [benchmarks["figure"].format(figure=figure) for figure in SUMMARY_FIGURES]
    assert [str(path) for path in campaign_job_benchmarks()] == made_once + figures
