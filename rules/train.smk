# Longest trainings first (priority), so that the last ones to finish are short.
# A retry resumes from the last epoch, with a smaller batch only after running
# out of memory (batch_after_memory_failures in attempts.py). The monitor holds
# every attempt's device samples, written live beside the run (run.monitor/).
rule train:
    input:
        unpack(train_input),
    output:
        weights=layout.TRAINED_WEIGHTS,
        results=layout.EPOCH_TABLE,
        summary=layout.TRAINING_SUMMARY,
        provenance=layout.TRAINING_PROVENANCE,
        monitor=layout.TRAINING_MONITOR,
    log:
        "logs/train/{cfg}.log",
    benchmark:
        "logs/train/{cfg}.benchmark.tsv"
    priority: training_priority
    retries: 2
    conda:
        "../envs/train.yaml"
    threads: training_threads
    resources:
        gpu=training_gpus,
        gpu_mb=training_gpu_mb,
    params:
        model=config_model,
        args=training_args,
        args_hash=training_args_hash,
        run_dir=layout.TRAINING_RUN,
    script:
        "../scripts/train.py"
