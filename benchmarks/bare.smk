# The campaign's DAG shape with nothing else: same rules, wildcards and edges
# (each figure reads what its rule in rules/summary.smk reads), plain file
# lists instead of input functions, no validation, no params.
# benchmarks/planning.py times `snakemake -n` on it as the floor that
# Snakemake itself sets, after checking that both DAGs have as many jobs and
# edges.

CONFIGS = config["configs"]  # {name: model}
IMGSZ = config["imgsz"]  # {name: training image size}
MODELS = sorted(set(CONFIGS.values()))
SPLITS = ["val", "test"]
DETECT = config["detect"]  # configuration names with an annotated video
STUDY = config["study"]  # configuration names in the image-size study
FORMATS = config["formats"]  # exported formats timed beside PyTorch
TIMED_BY = config["timed_by"]  # {name: the configuration its network is timed on}
FIGURES = [
    "map_by_config",
    "accuracy_vs_latency",
    "training_curves",
    "per_class_ap",
    "imgsz_study",
]
DATASET = [
    "dataset/dataset.yaml",
    "dataset/manifest.csv",
    "dataset/train.txt",
    "dataset/val.txt",
    "dataset/test.txt",
]


def at_size(wildcards):
    """The dataset as a configuration's jobs read it: the copy shrunk to its size, the clean lists."""
    return [f"dataset/resized/{IMGSZ[wildcards.cfg]}/dataset.yaml"] + DATASET[1:]


wildcard_constraints:
    cfg="[^/]+",
    split="val|test",
    imgsz=r"\d+",


rule all:
    input:
        "summary/metrics.csv",
        "summary/metrics.md",
        "summary/findings.html",
        "figures/dataset_overview.png",
        "figures/label_analysis.png",
        "figures/campaign_timeline.png",
        expand("figures/{figure}.png", figure=FIGURES),
        expand("detect/{cfg}/table.mp4", cfg=DETECT),


rule clean_dataset:
    input:
        config["raw_files"],
    output:
        "dataset/cleaned.done",
        "dataset/manifest.csv",
    shell:
        "touch {output}"


rule split_dataset:
    input:
        "dataset/cleaned.done",
    output:
        "dataset/dataset.yaml",
        "dataset/train.txt",
        "dataset/val.txt",
        "dataset/test.txt",
    shell:
        "touch {output}"


rule resize_dataset:
    input:
        DATASET,
    output:
        "dataset/resized/{imgsz}/dataset.yaml",
        expand("dataset/resized/{{imgsz}}/{split}.txt", split=["train", "val", "test"]),
    shell:
        "touch {output}"


rule dataset_figures:
    input:
        DATASET,
    output:
        "figures/dataset_overview.png",
        "figures/label_analysis.png",
    shell:
        "touch {output}"


rule pretrain_source_data:
    output:
        "pretrain/source/dataset.yaml",
    shell:
        "touch {output}"


rule pretrain:
    input:
        "pretrain/source/dataset.yaml",
    output:
        "pretrain/{model}.pt",
    shell:
        "touch {output}"


rule train:
    input:
        at_size,
        lambda wc: f"pretrain/{CONFIGS[wc.cfg]}.pt",
    output:
        "train/{cfg}/best.pt",
        "train/{cfg}/results.csv",
        "train/{cfg}/train.json",
        "train/{cfg}/provenance.json",
        "train/{cfg}/monitor.csv",
    shell:
        "touch {output}"


rule evaluate:
    input:
        at_size,
        "train/{cfg}/best.pt",
    output:
        "eval/{cfg}/{split}/metrics.json",
        "eval/{cfg}/{split}/provenance.json",
        "eval/{cfg}/{split}/per_class.csv",
        "eval/{cfg}/{split}/confusion.png",
        "eval/{cfg}/{split}/pr_curve.png",
        "eval/{cfg}/{split}/f1_curve.png",
        "eval/{cfg}/{split}/matches.npz",
    shell:
        "touch {output}"


rule bootstrap:
    input:
        "eval/{cfg}/{split}/matches.npz",
    output:
        "eval/{cfg}/{split}/intervals.json",
        "eval/{cfg}/{split}/bootstrap.npz",
    shell:
        "touch {output}"


rule export:
    input:
        DATASET,
        "train/{cfg}/best.pt",
    output:
        "export/{cfg}/best.{format}",
        "export/{cfg}/{format}.provenance.json",
    shell:
        "touch {output}"


rule latency:
    input:
        at_size,
        "dataset/dataset.yaml",
        "train/{cfg}/best.pt",
        lambda wc: expand("export/{cfg}/best.{format}", cfg=wc.cfg, format=FORMATS),
    output:
        "latency/{cfg}.csv",
    shell:
        "touch {output}"


rule speed:
    input:
        at_size,
        lambda wc: f"latency/{TIMED_BY[wc.cfg]}.csv",
        "train/{cfg}/best.pt",
        "eval/{cfg}/test/metrics.json",
        lambda wc: expand("export/{cfg}/best.{format}", cfg=wc.cfg, format=FORMATS),
    output:
        "speed/{cfg}.csv",
    shell:
        "touch {output}"


rule imgsz_study:
    input:
        at_size,
        "dataset/dataset.yaml",
        "train/{cfg}/best.pt",
    output:
        "study/{cfg}.csv",
    shell:
        "touch {output}"


rule detect:
    input:
        "train/{cfg}/best.pt",
    output:
        "detect/{cfg}/table.mp4",
        "detect/{cfg}/table.png",
    shell:
        "touch {output}"


rule summary_table:
    input:
        expand("train/{cfg}/train.json", cfg=CONFIGS),
        expand("eval/{cfg}/{split}/metrics.json", cfg=CONFIGS, split=SPLITS),
        expand("speed/{cfg}.csv", cfg=CONFIGS),
        expand("train/{cfg}/provenance.json", cfg=CONFIGS),
        expand(
            "eval/{cfg}/{split}/{file}",
            cfg=CONFIGS,
            split=SPLITS,
            file=["intervals.json", "bootstrap.npz"],
        ),
    output:
        "summary/metrics.csv",
        "summary/metrics.md",
        "summary/groups.csv",
    shell:
        "touch {output}"


rule findings:
    input:
        expand("train/{cfg}/train.json", cfg=CONFIGS),
        expand(
            "eval/{cfg}/test/{file}",
            cfg=CONFIGS,
            file=["intervals.json", "bootstrap.npz"],
        ),
    output:
        "summary/findings.csv",
        "summary/findings.html",
    shell:
        "touch {output}"


rule campaign_timeline:
    input:
        expand("train/{cfg}/monitor.csv", cfg=CONFIGS),
    output:
        "figures/campaign_timeline.png",
    shell:
        "touch {output}"


rule figure_imgsz_study:
    input:
        expand("study/{cfg}.csv", cfg=STUDY),
    output:
        "figures/imgsz_study.png",
    shell:
        "touch {output}"


rule figure_from_summary:
    input:
        "summary/groups.csv",
    output:
        "figures/{figure}.png",
    wildcard_constraints:
        figure="map_by_config|accuracy_vs_latency",
    shell:
        "touch {output}"


rule figure_training_curves:
    input:
        expand("train/{cfg}/results.csv", cfg=CONFIGS),
    output:
        "figures/training_curves.png",
    shell:
        "touch {output}"


rule figure_per_class_ap:
    input:
        expand("eval/{cfg}/test/per_class.csv", cfg=CONFIGS),
    output:
        "figures/per_class_ap.png",
    shell:
        "touch {output}"
