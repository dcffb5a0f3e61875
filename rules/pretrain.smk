rule pretrain_source_data:
    output:
        dataset="results/pretrain/source/dataset.yaml",
        images=directory("results/pretrain/source/images"),
        labels=directory("results/pretrain/source/labels"),
    log:
        "logs/pretrain_source_data.log",
    benchmark:
        "logs/pretrain_source_data.benchmark.tsv"
    conda:
        "../envs/dataset.yaml"
    params:
        images=config["pretrain"]["images"],
        seed=config["pretrain"]["seed"],
        imgsz=config["pretrain"]["imgsz"],
    script:
        "../scripts/pretrain_source_data.py"


rule pretrain:
    input:
        dataset="results/pretrain/source/dataset.yaml",
    output:
        weights="results/pretrain/{model}.pt",
        summary="results/pretrain/{model}.json",
        provenance="results/pretrain/{model}.provenance.json",
    log:
        "logs/pretrain/{model}.log",
    benchmark:
        "logs/pretrain/{model}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        gpu=SHARES_PER_GPU,
    params:
        model=lambda wc: wc.model,
        run_dir=lambda wc: f"results/pretrain/{wc.model}_run",
        args=pretrain_args(),
        args_hash=stable_hash(pretrain_args()),
    script:
        "../scripts/pretrain.py"
