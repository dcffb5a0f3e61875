rule evaluate:
    input:
        unpack(config_dataset),
        weights=layout.TRAINED_WEIGHTS,
    output:
        metrics=layout.EVAL_METRICS,
        provenance=layout.EVAL_PROVENANCE,
        per_class=layout.EVAL_PER_CLASS,
        matches=layout.EVAL_MATCHES,
        confusion=evaluation_plot(layout.EVAL_CONFUSION, "confusion", "confusion matrix"),
        pr_curve=evaluation_plot(layout.EVAL_PR_CURVE, "pr_curve", "precision-recall"),
        f1_curve=evaluation_plot(layout.EVAL_F1_CURVE, "f1_curve", "F1-confidence"),
    log:
        "logs/evaluate/{cfg}_{split}.log",
    benchmark:
        "logs/evaluate/{cfg}_{split}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    resources:
        gpu=evaluation_gpus,
    params:
        args=evaluation_args,
    script:
        "../scripts/evaluate.py"


# Resampling needs numpy alone: the reporting environment, not the training one.
rule bootstrap:
    input:
        matches=layout.EVAL_MATCHES,
    output:
        intervals=layout.EVAL_INTERVALS,
        resampled=layout.EVAL_BOOTSTRAP,
    log:
        "logs/bootstrap/{cfg}_{split}.log",
    benchmark:
        "logs/bootstrap/{cfg}_{split}.benchmark.tsv"
    conda:
        "../envs/reporting.yaml"
    params:
        bootstrap=config["evaluation"]["bootstrap"],
    script:
        "../scripts/bootstrap.py"


# An export reads the dataset only for its provenance record: what the model was trained on.
rule export:
    input:
        **CAMPAIGN.cleaned_dataset,
        weights=layout.TRAINED_WEIGHTS,
    output:
        model=layout.EXPORTED_MODEL,
        provenance=layout.EXPORT_PROVENANCE,
    log:
        "logs/export/{cfg}_{format}.log",
    benchmark:
        "logs/export/{cfg}_{format}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    params:
        args=export_args,
    script:
        "../scripts/export.py"


# A network's timing, PyTorch and each exported format, on the test images at the
# training size and on the full-size photos (from file to boxes). A timing needs
# the machine to itself: taking every core keeps other jobs off it.
rule latency:
    input:
        unpack(config_dataset),
        photos=layout.DATASET_YAML,
        weights=layout.TRAINED_WEIGHTS,
        exported=expand(layout.EXPORTED_MODEL, cfg="{cfg}", format=EXPORT_FORMATS),
    output:
        latency=layout.LATENCY_TABLE,
        provenance=layout.LATENCY_PROVENANCE,
    log:
        "logs/latency/{cfg}.log",
    benchmark:
        "logs/latency/{cfg}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    threads: all_cores(workflow)
    resources:
        gpu=evaluation_gpus,
    params:
        args=latency_args,
    script:
        "../scripts/latency.py"


# A configuration's speed study: its network's timing (made on the first
# configuration with that network), with the PyTorch model's accuracy (metrics)
# beside each exported one's.
rule speed:
    input:
        unpack(config_dataset),
        latency=timing_of,
        weights=layout.TRAINED_WEIGHTS,
        metrics=layout.EVAL_METRICS.replace("{split}", COMPARISON_SPLIT),
        exported=expand(layout.EXPORTED_MODEL, cfg="{cfg}", format=EXPORT_FORMATS),
    output:
        speed=layout.SPEED_TABLE,
        provenance=layout.SPEED_PROVENANCE,
    log:
        "logs/speed/{cfg}.log",
    benchmark:
        "logs/speed/{cfg}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    params:
        evaluation={"split": COMPARISON_SPLIT, **CAMPAIGN.validation_args},
    script:
        "../scripts/speed.py"


# Sizes up to the training's (resized_to) read the copy shrunk to it; larger ones the full-size images.
rule imgsz_study:
    input:
        unpack(study_input),
    output:
        study=layout.STUDY_TABLE,
        provenance=layout.STUDY_PROVENANCE,
    log:
        "logs/imgsz_study/{cfg}.log",
    benchmark:
        "logs/imgsz_study/{cfg}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    resources:
        gpu=evaluation_gpus,
    params:
        args=CAMPAIGN.study_args,
        resized_to=resized_size,
    script:
        "../scripts/imgsz_study.py"


rule detect:
    input:
        weights=layout.TRAINED_WEIGHTS,
        source=detect_source_files,
    output:
        video=layout.DETECTION_VIDEO,
        sheet=in_report(layout.DETECTION_SHEET, "detect", DETECTIONS_SECTION, detection_labels),
    log:
        "logs/detect/{cfg}_{source}.log",
    benchmark:
        "logs/detect/{cfg}_{source}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    resources:
        gpu=evaluation_gpus,
    params:
        source=detect_source,
        imgsz=config_imgsz,
        conf=config["detect"]["conf"],
    script:
        "../scripts/detect.py"
