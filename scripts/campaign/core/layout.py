"""Where the workflow keeps what it makes: one table of result paths.

Every result a rule writes is named here once, as the Snakemake pattern of
its path; the rules take their outputs and inputs from this table, and the
code that reads results outside a rule job (the `campaign status` and `plan`
commands, the parse-time choice of checkpoints) finds them through it too
(`result_path`). A training job's own files beside its outputs (kept across
attempts, never declared: Snakemake would delete them before a retry) are
TrainingFolder's.
"""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path("results")
# The workflow's own folder (Snakefile, schemas/, envs/), which this library lives in.
WORKFLOW_DIR = next(folder for folder in Path(__file__).resolve().parents if (folder / "Snakefile").is_file())

# Cleaning and splitting (rules/dataset.smk).
CLEAN_IMAGES = "results/dataset/images"
CLEAN_LABELS = "results/dataset/labels"
CLEANING_REPORT = "results/dataset/cleaning_report.csv"
CLEANING_SUMMARY = "results/dataset/cleaning_summary.txt"
CLEANING_DETAILS = "results/dataset/cleaning_details.txt"
MANIFEST = "results/dataset/manifest.csv"
SPLIT_LIST = "results/dataset/{split}.txt"
DATASET_YAML = "results/dataset/dataset.yaml"
LEAKAGE = "results/dataset/leakage.csv"
DATASET_OVERVIEW = "results/dataset/overview.csv"
RESIZED_IMAGES = "results/dataset/resized/{imgsz}/images"
RESIZED_LABELS = "results/dataset/resized/{imgsz}/labels"
RESIZED_SPLIT_LIST = "results/dataset/resized/{imgsz}/{split}.txt"
RESIZED_DATASET_YAML = "results/dataset/resized/{imgsz}/dataset.yaml"
# Pretraining on generated shapes (rules/pretrain.smk).
PRETRAIN_SOURCE_YAML = "results/pretrain/source/dataset.yaml"
PRETRAIN_SOURCE_IMAGES = "results/pretrain/source/images"
PRETRAIN_SOURCE_LABELS = "results/pretrain/source/labels"
PRETRAINED_WEIGHTS = "results/pretrain/{model}.pt"
PRETRAIN_SUMMARY = "results/pretrain/{model}.json"
PRETRAIN_PROVENANCE = "results/pretrain/{model}.provenance.json"
PRETRAIN_RUN = "results/pretrain/{model}_run"
# Training (rules/train.smk); TrainingFolder names the files kept beside them.
TRAINED_WEIGHTS = "results/train/{cfg}/best.pt"
EPOCH_TABLE = "results/train/{cfg}/results.csv"
TRAINING_SUMMARY = "results/train/{cfg}/train.json"
TRAINING_PROVENANCE = "results/train/{cfg}/provenance.json"
TRAINING_MONITOR = "results/train/{cfg}/monitor.csv"
TRAINING_RUN = "results/train/{cfg}/run"
# Evaluation, bootstrap, export, speed, image-size study, detections (rules/evaluate.smk).
EVALUATION_FILE = "results/eval/{cfg}/{split}/{file}"
EVAL_METRICS = EVALUATION_FILE.replace("{file}", "metrics.json")
EVAL_PROVENANCE = EVALUATION_FILE.replace("{file}", "provenance.json")
EVAL_PER_CLASS = EVALUATION_FILE.replace("{file}", "per_class.csv")
EVAL_MATCHES = EVALUATION_FILE.replace("{file}", "matches.npz")
EVAL_CONFUSION = EVALUATION_FILE.replace("{file}", "confusion.png")
EVAL_PR_CURVE = EVALUATION_FILE.replace("{file}", "pr_curve.png")
EVAL_F1_CURVE = EVALUATION_FILE.replace("{file}", "f1_curve.png")
EVAL_INTERVALS = EVALUATION_FILE.replace("{file}", "intervals.json")
EVAL_BOOTSTRAP = EVALUATION_FILE.replace("{file}", "bootstrap.npz")
EXPORTED_MODEL = "results/export/{cfg}/best.{format}"
EXPORT_PROVENANCE = "results/export/{cfg}/{format}.provenance.json"
# The timing of a configuration's network, made once on the first configuration with it (timing.py).
LATENCY_TABLE = "results/latency/{cfg}.csv"
LATENCY_PROVENANCE = "results/latency/{cfg}.provenance.json"
SPEED_TABLE = "results/speed/{cfg}.csv"
SPEED_PROVENANCE = "results/speed/{cfg}.provenance.json"
STUDY_TABLE = "results/study/{cfg}.csv"
STUDY_PROVENANCE = "results/study/{cfg}.provenance.json"
DETECTION = "results/detect/{cfg}/{source}.{ending}"
DETECTION_VIDEO = DETECTION.replace("{ending}", "mp4")
DETECTION_SHEET = DETECTION.replace("{ending}", "png")
# Probes before the campaign (rules/plan.smk).
PROBE_TABLE = "results/plan/probe/{probe}.csv"
PROBES_TABLE = "results/plan/probes.csv"
# The split of a campaign into shards, as a sharded run recorded it (planning/shards.py).
SHARD_SPLIT = "results/plan/shards.json"
# Summary and figures (rules/summary.smk).
METRICS_CSV = "results/summary/metrics.csv"
METRICS_MD = "results/summary/metrics.md"
METRICS_HTML = "results/summary/metrics.html"
GROUPS = "results/summary/groups.csv"
FINDINGS_CSV = "results/summary/findings.csv"
FINDINGS_HTML = "results/summary/findings.html"
DEVICE_USAGE = "results/summary/device_usage.csv"
FIGURE = "results/figures/{figure}.png"


# The JSON records jobs write and later jobs (and the commands) read back: one that cannot be read is set
# aside before Snakemake plans, so that its job runs again instead of counting as done (core/records.py).
JSON_RECORDS = (
    PRETRAIN_SUMMARY,
    PRETRAIN_PROVENANCE,
    TRAINING_SUMMARY,
    TRAINING_PROVENANCE,
    EVAL_METRICS,
    EVAL_INTERVALS,
    EVAL_PROVENANCE,
    EXPORT_PROVENANCE,
    LATENCY_PROVENANCE,
    SPEED_PROVENANCE,
    STUDY_PROVENANCE,
)


def record_globs() -> list[str]:
    """JSON_RECORDS as glob patterns, every wildcard any name."""
    return [re.sub(r"\{[^}]+\}", "*", pattern) for pattern in JSON_RECORDS]


# The figures of the default run (results/figures/<name>.png), each made by its own rule.
FIGURES = [
    "dataset_overview",
    "label_analysis",
    "map_by_config",
    "accuracy_vs_latency",
    "training_curves",
    "per_class_ap",
    "campaign_timeline",
    "imgsz_study",
]
# The comparison figures the `figure` rule draws, one job each, with their label in the report.
SUMMARY_FIGURES = {
    "map_by_config": "mAP by configuration",
    "accuracy_vs_latency": "accuracy vs latency",
    "training_curves": "training curves",
    "per_class_ap": "per-class AP",
    "imgsz_study": "image-size study",
}
# The one-job rules made once for the whole campaign besides its data's preparation: the dataset's
# figures, and those that wait for every training (with the `figure` rule's jobs: campaign_job_benchmarks).
CAMPAIGN_JOBS = ["dataset_figures", "summary_table", "findings", "campaign_timeline"]
# The sections of the HTML report (`snakemake --report`), in their order.
DATASET_SECTION = "1. Dataset"
COMPARISON_SECTION = "2. Comparison"
EVALUATION_SECTION = "3. Evaluation"
DETECTIONS_SECTION = "4. Detections"


def job_benchmark(rule: str, job: str, logs: Path = Path("logs")) -> Path:
    """A job's Snakemake benchmark file: logs/<rule>/<job>.benchmark.tsv, <job> its wildcards joined by "_".

    Every rule's `benchmark:` follows it (tests/test_layout.py), so that the
    status page and the plan find each job's measured time.
    """
    return logs / rule / f"{job}.benchmark.tsv"


def campaign_job_benchmarks(logs: Path = Path("logs")) -> list[Path]:
    """The benchmark files of the jobs made once for the campaign (CAMPAIGN_JOBS and each comparison figure)."""
    return [logs / f"{rule}.benchmark.tsv" for rule in CAMPAIGN_JOBS] + [
        job_benchmark("figure", name, logs) for name in SUMMARY_FIGURES
    ]


def figure(name: str) -> str:
    """The path of one figure (results/figures/<name>.png)."""
    return FIGURE.format(figure=name)


def result_path(pattern: str, results: Path = RESULTS, **wildcards: str) -> Path:
    """A result's path with its wildcards filled in, under `results` instead of results/ where given."""
    return Path(results) / Path(pattern.format(**wildcards)).relative_to(RESULTS)


def pretrained_checkpoint(model: str) -> str:
    """The checkpoint the `pretrain` rule writes for a model (relative to the workflow's folder)."""
    return PRETRAINED_WEIGHTS.format(model=model)


def split_list(split: str, results: Path = RESULTS) -> Path:
    """The cleaned dataset's list of one split (train, val, test)."""
    return result_path(SPLIT_LIST, results, split=split)


def probes_table(results: Path = RESULTS) -> Path:
    """The `plan_probes` rule's table of measured training steps."""
    return result_path(PROBES_TABLE, results)


def by_config(files: list[str], names: list[str]) -> dict[str, Path]:
    """A rule's input list of one file per configuration (in `names` order), keyed by configuration.

    Each path must name its configuration: a list out of order is an error, never a silent mix-up.
    """
    if len(files) != len(names):
        raise ValueError(f"{len(files)} files for {len(names)} configurations")
    paired = {name: Path(path) for name, path in zip(names, files)}
    for name, path in paired.items():
        if name not in path.parts and not path.name.startswith(f"{name}."):
            raise ValueError(f"{path} is not a file of configuration {name}")
    return paired


def by_config_and_split(files: list[str], names: list[str], splits: list[str]) -> dict[tuple[str, str], Path]:
    """A rule's input list expanded over configurations, then splits, keyed by (configuration, split)."""
    keys = [(name, split) for name in names for split in splits]
    if len(files) != len(keys):
        raise ValueError(f"{len(files)} files for {len(keys)} configurations and splits")
    paired = {key: Path(path) for key, path in zip(keys, files)}
    for (name, split), path in paired.items():
        if name not in path.parts or split not in path.parts:
            raise ValueError(f"{path} is not a file of configuration {name} on {split}")
    return paired
