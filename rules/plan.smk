rule probe:
    input:
        unpack(probe_dataset),
    output:
        probe=layout.PROBE_TABLE,
    log:
        "logs/probe/{probe}.log",
    benchmark:
        "logs/probe/{probe}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    threads: probe_threads
    resources:
        gpu=probe_gpus,
    params:
        args=probe_args,
        iterations=config["plan"]["iterations"],
        cpu_batch=config["plan"]["cpu_batch"],
    script:
        "../scripts/probe.py"


rule plan_probes:
    input:
        expand(layout.PROBE_TABLE, probe=sorted(CAMPAIGN.probes)),
    output:
        layout.PROBES_TABLE,
    log:
        "logs/plan_probes.log",
    conda:
        "../envs/reporting.yaml"
    script:
        "../scripts/plan_probes.py"
