rule evaluate:
    input:
        unpack(config_dataset),
        weights=layout.TRAINED_WEIGHTS,
    output:
        metrics=layout.EVAL_METRICS,
        provenance=layout.EVAL_PROVENANCE,
        per_class=layout.EVAL_PER_CLASS,
        matches=layout.EVAL_MATCHES,
        confusion=report(
            layout.EVAL_CONFUSION,
            caption="../report/confusion.rst",
            category="3. Evaluation",
            subcategory="{split}",
            labels=lambda wc: evaluation_labels(wc, "confusion matrix"),
        ),
        pr_curve=report(
            layout.EVAL_PR_CURVE,
            caption="../report/pr_curve.rst",
            category="3. Evaluation",
            subcategory="{split}",
            labels=lambda wc: evaluation_labels(wc, "precision-recall"),
        ),
        f1_curve=report(
            layout.EVAL_F1_CURVE,
            caption="../report/f1_curve.rst",
            category="3. Evaluation",
            subcategory="{split}",
            labels=lambda wc: evaluation_labels(wc, "F1-confidence"),
        ),
    log:
        "logs/evaluate/{cfg}_{split}.log",
    benchmark:
        "logs/evaluate/{cfg}_{split}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    resources:
        gpu=evaluation_gpus,
    params:
        args=lambda wc: {
            "imgsz": CONFIGS[wc.cfg].imgsz,
            **VALIDATION_ARGS,
            "split": wc.split,
        },
    script:
        "../scripts/evaluate.py"


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
        "../envs/train.yaml"
    params:
        bootstrap=config["evaluation"]["bootstrap"],
    script:
        "../scripts/bootstrap.py"


rule export:
    input:
        # The dataset only for the provenance record: what the exported model was trained on.
        **DATASET,
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
        args=lambda wc: {"imgsz": CONFIGS[wc.cfg].imgsz, "format": wc.format},
    script:
        "../scripts/export.py"


rule latency:
    input:
        unpack(config_dataset),
        # Full-size photos, timed from file to boxes.
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
    # A timing needs the machine to itself: taking every core keeps other jobs off it.
    threads: all_cores()
    resources:
        gpu=evaluation_gpus,
    params:
        args=lambda wc: {"imgsz": CONFIGS[wc.cfg].imgsz, **config["speed"]},
    script:
        "../scripts/latency.py"


rule speed:
    input:
        unpack(config_dataset),
        # The timing of the configuration's network (made on the first configuration with it).
        latency=lambda wc: layout.LATENCY_TABLE.format(cfg=TIMED_BY[wc.cfg]),
        weights=layout.TRAINED_WEIGHTS,
        # The PyTorch model's accuracy, to stand beside each exported one's.
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
        evaluation={"split": COMPARISON_SPLIT, **VALIDATION_ARGS},
    script:
        "../scripts/speed.py"


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
        args=lambda wc: {
            "imgsz": config["study"]["imgsz"],
            "split": config["study"]["split"],
            **VALIDATION_ARGS,
        },
        # Sizes up to it read the copy shrunk to it; larger ones the full-size images.
        resized_to=lambda wc: (
            CONFIGS[wc.cfg].imgsz if CONFIGS[wc.cfg].imgsz in RESIZED_SIZES else 0
        ),
    script:
        "../scripts/imgsz_study.py"


rule detect:
    input:
        weights=layout.TRAINED_WEIGHTS,
        source=detect_source_files,
    output:
        video=layout.DETECTION_VIDEO,
        sheet=report(
            layout.DETECTION_SHEET,
            caption="../report/detect.rst",
            category="4. Detections",
            labels=lambda wc: {**config_labels(wc.cfg), "source": wc.source},
        ),
    log:
        "logs/detect/{cfg}_{source}.log",
    benchmark:
        "logs/detect/{cfg}_{source}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    resources:
        gpu=evaluation_gpus,
    params:
        source=lambda wc: DETECT_SOURCES[wc.source],
        imgsz=lambda wc: CONFIGS[wc.cfg].imgsz,
        conf=config["detect"]["conf"],
    script:
        "../scripts/detect.py"
