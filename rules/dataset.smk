rule clean_dataset:
    input:
        raw_upload_files(),
    output:
        images=directory("results/dataset/images"),
        labels=directory("results/dataset/labels"),
        report=report(
            "results/dataset/cleaning_report.csv",
            caption="../report/cleaning_report.rst",
            category="1. Dataset",
            labels={"table": "cleaning report"},
        ),
        summary=report(
            "results/dataset/cleaning_summary.txt",
            caption="../report/cleaning_summary.rst",
            category="1. Dataset",
            labels={"table": "cleaning summary"},
        ),
        manifest="results/dataset/manifest.csv",
        # Report details too long for a cell (a label of thousands of rejected boxes), in full.
        details="results/dataset/cleaning_details.txt",
    log:
        "logs/clean_dataset.log",
    benchmark:
        "logs/clean_dataset.benchmark.tsv"
    conda:
        "../envs/dataset.yaml"
    threads: 2
    params:
        classes=config["dataset"]["classes"],
        class_map=config["dataset"]["class_map"],
        min_box_px=config["dataset"]["min_box_px"],
        background_groups=config["dataset"]["background_groups"],
        prefer_groups=config["dataset"]["prefer_groups"],
        max_pixels=config["dataset"]["max_pixels"],
    script:
        "../scripts/clean_dataset.py"


# The split lock (config splits.lock) is read and updated here but is neither
# input nor output: it records past decisions and lives beside the config.
# Declared, each update would make the next run redo the split, and Snakemake
# would delete it before every split, losing the very record it keeps.
rule split_dataset:
    input:
        manifest="results/dataset/manifest.csv",
    output:
        train="results/dataset/train.txt",
        val="results/dataset/val.txt",
        test="results/dataset/test.txt",
        dataset="results/dataset/dataset.yaml",
        leakage=report(
            "results/dataset/leakage.csv",
            caption="../report/leakage.rst",
            category="1. Dataset",
            labels={"table": "near-duplicates across splits"},
        ),
    log:
        "logs/split_dataset.log",
    benchmark:
        "logs/split_dataset.benchmark.tsv"
    conda:
        "../envs/dataset.yaml"
    params:
        classes=config["dataset"]["classes"],
        splits=config["splits"],
    script:
        "../scripts/split_dataset.py"


# Training at 320 px on 12-megapixel photos would decode each at full size
# again at every epoch: each training size gets its own shrunk copy.
rule resize_dataset:
    input:
        **DATASET,
    output:
        images=directory("results/dataset/resized/{imgsz}/images"),
        labels=directory("results/dataset/resized/{imgsz}/labels"),
        lists=expand(
            "results/dataset/resized/{{imgsz}}/{split}.txt",
            split=["train", "val", "test"],
        ),
        dataset="results/dataset/resized/{imgsz}/dataset.yaml",
    log:
        "logs/resize_dataset/{imgsz}.log",
    benchmark:
        "logs/resize_dataset/{imgsz}.benchmark.tsv"
    conda:
        "../envs/dataset.yaml"
    threads: 2
    script:
        "../scripts/resize_dataset.py"


rule dataset_figures:
    input:
        manifest="results/dataset/manifest.csv",
        train="results/dataset/train.txt",
        val="results/dataset/val.txt",
        test="results/dataset/test.txt",
    output:
        overview=report(
            "results/figures/dataset_overview.png",
            caption="../report/dataset_overview.rst",
            category="1. Dataset",
            labels={"figure": "dataset overview"},
        ),
        overview_csv="results/dataset/overview.csv",
        labels=report(
            "results/figures/label_analysis.png",
            caption="../report/label_analysis.rst",
            category="1. Dataset",
            labels={"figure": "label analysis"},
        ),
    log:
        "logs/dataset_figures.log",
    benchmark:
        "logs/dataset_figures.benchmark.tsv"
    conda:
        "../envs/reporting.yaml"
    params:
        classes=config["dataset"]["classes"],
    script:
        "../scripts/dataset_figures.py"
