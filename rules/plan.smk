rule probe:
    input:
        unpack(lambda wc: dataset_at(PROBES[wc.probe]["imgsz"])),
    output:
        probe=layout.PROBE_TABLE,
    log:
        "logs/probe/{probe}.log",
    benchmark:
        "logs/probe/{probe}.benchmark.tsv"
    conda:
        "../envs/train.yaml"
    threads: lambda wc: probe_threads(wc.probe)
    resources:
        gpu=lambda wc: min(PROBES[wc.probe]["gpus"], 1) * SHARES_PER_GPU,
    params:
        args=lambda wc: PROBES[wc.probe],
        iterations=config["plan"]["iterations"],
        cpu_batch=config["plan"]["cpu_batch"],
    script:
        "../scripts/probe.py"


rule plan_probes:
    input:
        expand(layout.PROBE_TABLE, probe=sorted(PROBES)),
    output:
        layout.PROBES_TABLE,
    log:
        "logs/plan_probes.log",
    conda:
        "../envs/reporting.yaml"
    script:
        "../scripts/plan_probes.py"
