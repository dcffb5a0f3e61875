rule pretrain_source_data:
    output:
        dataset=layout.PRETRAIN_SOURCE_YAML,
        images=directory(layout.PRETRAIN_SOURCE_IMAGES),
        labels=directory(layout.PRETRAIN_SOURCE_LABELS),
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
        dataset=layout.PRETRAIN_SOURCE_YAML,
    output:
        weights=layout.PRETRAINED_WEIGHTS,
        summary=layout.PRETRAIN_SUMMARY,
        provenance=layout.PRETRAIN_PROVENANCE,
    log:
        "logs/pretrain/{model}.log",
    benchmark:
        "logs/pretrain/{model}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        gpu=CAMPAIGN.shares_per_gpu,
    params:
        model="{model}",
        run_dir=layout.PRETRAIN_RUN,
        args=CAMPAIGN.pretrain_args,
        args_hash=stable_hash(CAMPAIGN.pretrain_args),
    script:
        "../scripts/pretrain.py"
