import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

# The rule scripts import their logic from scripts/campaign; so does the Snakefile.
sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from campaign.configurations import ConfigError, expand_campaign, stable_hash
from campaign.weights import resolve_pretrained_weights


validate(config, "../schemas/config.schema.yaml")

try:
    CONFIGS = expand_campaign(config["campaign"])
    PRETRAINED = resolve_pretrained_weights(
        CONFIGS.values(), config["weights"], config["pretrain"]["models"]
    )
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration: {error}") from None

if not Path(config["dataset"]["raw"]).is_dir():
    raise WorkflowError(
        f"Invalid configuration: dataset.raw: folder {config['dataset']['raw']!r} does not "
        "exist; point it at the raw upload folder (one sub-folder per group)"
    )

# Ultralytics must never reach the network; each job also gets its own
# settings folder (see scripts/campaign/yolo_env.py).
os.environ["YOLO_OFFLINE"] = "1"

SPLITS = config["evaluation"]["splits"]

wildcard_constraints:
    cfg="|".join(CONFIGS) or "NONE",
    split="val|test",
    model=r"yolo(v5|v8|11)[nsmlx]",


def raw_upload_files():
    """Every file of the raw upload: editing, adding or removing one reruns cleaning."""
    root = Path(config["dataset"]["raw"])
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def train_input(wildcards):
    """The dataset, plus the pretrained checkpoint where the configuration has one."""
    inputs = {"dataset": "results/dataset/dataset.yaml"}
    weights = PRETRAINED.get(wildcards.cfg)
    if weights:
        inputs["weights"] = weights
    return inputs


def pretrain_args():
    """Training arguments of the pretrain rule, from the `pretrain:` config section."""
    options = config["pretrain"]
    return {
        "epochs": options["epochs"],
        "imgsz": options["imgsz"],
        "batch": options["batch"],
        "seed": options["seed"],
        "deterministic": True,
        "workers": 2,
        "plots": False,
    }


def config_labels(name):
    """Report labels of a configuration, to filter by in the HTML report."""
    run = CONFIGS[name]
    return {
        "model": run.model,
        "freeze": str(run.freeze),
        "batch": str(run.batch),
        "imgsz": str(run.imgsz),
    }


def all_outputs():
    """Everything `rule all` builds: the summary table and every figure."""
    return [
        "results/summary/metrics.csv",
        "results/summary/metrics.md",
        "results/figures/dataset_overview.png",
        "results/figures/label_analysis.png",
        "results/figures/map_by_config.png",
        "results/figures/accuracy_vs_latency.png",
        "results/figures/training_curves.png",
        "results/figures/per_class_ap.png",
    ]
