rule train:
    input:
        unpack(train_input),
    output:
        weights="results/train/{cfg}/best.pt",
        results="results/train/{cfg}/results.csv",
        summary="results/train/{cfg}/train.json",
    params:
        model=lambda wc: CONFIGS[wc.cfg].model,
        args=lambda wc: CONFIGS[wc.cfg].train_args(),
        args_hash=lambda wc: CONFIGS[wc.cfg].args_hash(),
        gpus=lambda wc: CONFIGS[wc.cfg].gpus,
        run_dir=lambda wc: f"results/train/{wc.cfg}/run",
    resources:
        gpu=lambda wc: CONFIGS[wc.cfg].gpus,
    threads: 1
    log:
        "logs/train/{cfg}.log",
    benchmark:
        "logs/train/{cfg}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train.py"
