# With dataset.freeze the cleaned dataset is kept as it is: no rule makes it again
# (rules/common.smk checks it exists), so later uploads change nothing until the next campaign.
if not CAMPAIGN.dataset_frozen:

    # The details file holds what is too long for a cell of the report (a label
    # of thousands of rejected boxes), in full.
    rule clean_dataset:
        input:
            raw_upload_files(),
        output:
            images=directory(layout.CLEAN_IMAGES),
            labels=directory(layout.CLEAN_LABELS),
            report=table_in_report(layout.CLEANING_REPORT, "cleaning_report", DATASET_SECTION, "cleaning report"),
            summary=table_in_report(layout.CLEANING_SUMMARY, "cleaning_summary", DATASET_SECTION, "cleaning summary"),
            manifest=layout.MANIFEST,
            details=layout.CLEANING_DETAILS,
        log:
            "logs/clean_dataset.log",
        benchmark:
            "logs/clean_dataset.benchmark.tsv"
        conda:
            "../envs/dataset.yaml"
        threads: 2
        params:
            **CAMPAIGN.cleaning_params,
        script:
            "../scripts/clean_dataset.py"


# The split lock (config splits.lock) is read and updated here but is neither
# input nor output: it records past decisions and lives beside the config.
# Declared, each update would make the next run redo the split, and Snakemake
# would delete it before every split, losing the very record it keeps.
rule split_dataset:
    input:
        manifest=layout.MANIFEST,
    output:
        **CAMPAIGN.split_lists,
        dataset=layout.DATASET_YAML,
        leakage=table_in_report(layout.LEAKAGE, "leakage", DATASET_SECTION, "near-duplicates across splits"),
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
        **CAMPAIGN.cleaned_dataset,
    output:
        images=directory(layout.RESIZED_IMAGES),
        labels=directory(layout.RESIZED_LABELS),
        lists=expand(layout.RESIZED_SPLIT_LIST.replace("{imgsz}", "{{imgsz}}"), split=["train", "val", "test"]),
        dataset=layout.RESIZED_DATASET_YAML,
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
        **CAMPAIGN.split_lists,
        manifest=layout.MANIFEST,
    output:
        overview=figure_in_report("dataset_overview", DATASET_SECTION, "dataset overview"),
        overview_csv=layout.DATASET_OVERVIEW,
        labels=figure_in_report("label_analysis", DATASET_SECTION, "label analysis"),
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
