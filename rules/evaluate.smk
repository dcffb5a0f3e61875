rule evaluate:
    input:
        unpack(config_dataset),
        weights="results/train/{cfg}/best.pt",
    output:
        metrics="results/eval/{cfg}/{split}/metrics.json",
        provenance="results/eval/{cfg}/{split}/provenance.json",
        per_class="results/eval/{cfg}/{split}/per_class.csv",
        matches="results/eval/{cfg}/{split}/matches.npz",
        confusion=report(
            "results/eval/{cfg}/{split}/confusion.png",
            caption="../report/confusion.rst",
            category="3. Evaluation",
            subcategory="{split}",
            labels=lambda wc: evaluation_labels(wc, "confusion matrix"),
        ),
        pr_curve=report(
            "results/eval/{cfg}/{split}/pr_curve.png",
            caption="../report/pr_curve.rst",
            category="3. Evaluation",
            subcategory="{split}",
            labels=lambda wc: evaluation_labels(wc, "precision-recall"),
        ),
        f1_curve=report(
            "results/eval/{cfg}/{split}/f1_curve.png",
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
            "batch": config["evaluation"]["batch"],
            "conf": config["evaluation"]["conf"],
            "iou": config["evaluation"]["iou"],
            "split": wc.split,
        },
    script:
        "../scripts/evaluate.py"


rule bootstrap:
    input:
        matches="results/eval/{cfg}/{split}/matches.npz",
    output:
        intervals="results/eval/{cfg}/{split}/intervals.json",
        resampled="results/eval/{cfg}/{split}/bootstrap.npz",
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
        weights="results/train/{cfg}/best.pt",
    output:
        model="results/export/{cfg}/best.{format}",
        provenance="results/export/{cfg}/{format}.provenance.json",
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


rule speed:
    input:
        unpack(config_dataset),
        weights="results/train/{cfg}/best.pt",
        # The PyTorch model's accuracy, to stand beside each exported one's.
        metrics=f"results/eval/{{cfg}}/{COMPARISON_SPLIT}/metrics.json",
        exported=expand("results/export/{{cfg}}/best.{format}", format=EXPORT_FORMATS),
    output:
        speed="results/speed/{cfg}.csv",
        provenance="results/speed/{cfg}.provenance.json",
    log:
        "logs/speed/{cfg}.log",
    benchmark:
        "logs/speed/{cfg}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    # A timing needs the machine to itself: taking every core keeps other jobs off it.
    threads: all_cores()
    resources:
        gpu=evaluation_gpus,
    params:
        args=lambda wc: {"imgsz": CONFIGS[wc.cfg].imgsz, **config["speed"]},
        evaluation=lambda wc: {
            "split": COMPARISON_SPLIT,
            "batch": config["evaluation"]["batch"],
            "conf": config["evaluation"]["conf"],
            "iou": config["evaluation"]["iou"],
        },
    script:
        "../scripts/speed.py"


rule imgsz_study:
    input:
        unpack(study_input),
    output:
        study="results/study/{cfg}.csv",
        provenance="results/study/{cfg}.provenance.json",
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
            "batch": config["evaluation"]["batch"],
            "conf": config["evaluation"]["conf"],
            "iou": config["evaluation"]["iou"],
        },
        # Sizes up to it read the copy shrunk to it; larger ones the full-size images.
        resized_to=lambda wc: (
            CONFIGS[wc.cfg].imgsz if CONFIGS[wc.cfg].imgsz in RESIZED_SIZES else 0
        ),
    script:
        "../scripts/imgsz_study.py"


rule detect:
    input:
        weights="results/train/{cfg}/best.pt",
        source=detect_source_files,
    output:
        video="results/detect/{cfg}/{source}.mp4",
        sheet=report(
            "results/detect/{cfg}/{source}.png",
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
