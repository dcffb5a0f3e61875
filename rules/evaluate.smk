rule evaluate:
    input:
        weights="results/train/{cfg}/best.pt",
        dataset="results/dataset/dataset.yaml",
    output:
        metrics="results/eval/{cfg}/{split}/metrics.json",
        per_class="results/eval/{cfg}/{split}/per_class.csv",
        confusion=report(
            "results/eval/{cfg}/{split}/confusion.png",
            caption="../report/confusion.rst",
            category="3. Evaluation",
            subcategory="{split}",
            labels=lambda wc: {**config_labels(wc.cfg), "split": wc.split},
        ),
    params:
        imgsz=lambda wc: CONFIGS[wc.cfg].imgsz,
        batch=config["evaluation"]["batch"],
        gpus=lambda wc: min(CONFIGS[wc.cfg].gpus, 1),
    resources:
        gpu=lambda wc: min(CONFIGS[wc.cfg].gpus, 1),
    log:
        "logs/evaluate/{cfg}_{split}.log",
    benchmark:
        "logs/evaluate/{cfg}_{split}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/evaluate.py"


rule speed:
    input:
        weights="results/train/{cfg}/best.pt",
        test="results/dataset/test.txt",
    output:
        "results/speed/{cfg}.csv",
    params:
        imgsz=lambda wc: CONFIGS[wc.cfg].imgsz,
        options=config["speed"],
        gpus=lambda wc: min(CONFIGS[wc.cfg].gpus, 1),
    resources:
        gpu=lambda wc: min(CONFIGS[wc.cfg].gpus, 1),
    # A timing needs the machine to itself: taking every core keeps other jobs off it.
    threads: workflow.cores
    log:
        "logs/speed/{cfg}.log",
    benchmark:
        "logs/speed/{cfg}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/speed.py"
