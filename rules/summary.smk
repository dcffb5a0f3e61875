rule summary_table:
    input:
        train=expand("results/train/{cfg}/train.json", cfg=CONFIGS),
        metrics=expand(
            "results/eval/{cfg}/{split}/metrics.json", cfg=CONFIGS, split=SPLITS
        ),
        intervals=expand(
            "results/eval/{cfg}/{split}/intervals.json", cfg=CONFIGS, split=SPLITS
        ),
        bootstrap=expand(
            "results/eval/{cfg}/{split}/bootstrap.npz", cfg=CONFIGS, split=SPLITS
        ),
        speed=expand("results/speed/{cfg}.csv", cfg=CONFIGS),
        provenance=expand("results/train/{cfg}/provenance.json", cfg=CONFIGS),
    output:
        csv=report(
            "results/summary/metrics.csv",
            caption="../report/summary_table.rst",
            category="2. Comparison",
            labels={"table": "metrics (CSV, to download)"},
        ),
        html=report(
            "results/summary/metrics.html",
            caption="../report/summary_table.rst",
            category="2. Comparison",
            labels={"table": "metrics (sortable)"},
        ),
        markdown="results/summary/metrics.md",
        groups=report(
            "results/summary/groups.csv",
            caption="../report/groups_table.rst",
            category="2. Comparison",
            labels={"table": "configurations, seeds pooled (CSV)"},
        ),
    log:
        "logs/summary_table.log",
    benchmark:
        "logs/summary_table.benchmark.tsv"
    conda:
        "../envs/reporting.yaml"
    params:
        configs=[config.parameters() for config in CONFIGS.values()],
        comparison_keys={
            name: config.comparison_key() for name, config in CONFIGS.items()
        },
        splits=SPLITS,
        bootstrap=config["evaluation"]["bootstrap"],
    script:
        "../scripts/summary_table.py"


rule findings:
    input:
        intervals=expand(
            "results/eval/{cfg}/{split}/intervals.json",
            cfg=CONFIGS,
            split=COMPARISON_SPLIT,
        ),
        bootstrap=expand(
            "results/eval/{cfg}/{split}/bootstrap.npz",
            cfg=CONFIGS,
            split=COMPARISON_SPLIT,
        ),
    output:
        csv=report(
            "results/summary/findings.csv",
            caption="../report/findings.rst",
            category="2. Comparison",
            labels={"table": "1. findings (CSV, to download)"},
        ),
        html=report(
            "results/summary/findings.html",
            caption="../report/findings.rst",
            category="2. Comparison",
            labels={"table": "1. findings (sortable)"},
        ),
    log:
        "logs/findings.log",
    benchmark:
        "logs/findings.benchmark.tsv"
    conda:
        "../envs/reporting.yaml"
    params:
        runs=[
            {"config": name, "group": run.group, "key": run.comparison_key()}
            for name, run in CONFIGS.items()
        ],
        split=COMPARISON_SPLIT,
        metric=config["evaluation"]["findings_metric"],
        bootstrap=config["evaluation"]["bootstrap"],
    script:
        "../scripts/findings.py"


rule figure_map_by_config:
    input:
        "results/summary/groups.csv",
    output:
        report(
            "results/figures/map_by_config.png",
            caption="../report/map_by_config.rst",
            category="2. Comparison",
            labels={"figure": "mAP by configuration"},
        ),
    log:
        "logs/figures/map_by_config.log",
    conda:
        "../envs/reporting.yaml"
    script:
        "../scripts/figures.py"


rule figure_accuracy_vs_latency:
    input:
        "results/summary/groups.csv",
    output:
        report(
            "results/figures/accuracy_vs_latency.png",
            caption="../report/accuracy_vs_latency.rst",
            category="2. Comparison",
            labels={"figure": "accuracy vs latency"},
        ),
    log:
        "logs/figures/accuracy_vs_latency.log",
    conda:
        "../envs/reporting.yaml"
    script:
        "../scripts/figures.py"


rule figure_training_curves:
    input:
        expand("results/train/{cfg}/results.csv", cfg=CONFIGS),
    output:
        report(
            "results/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="2. Comparison",
            labels={"figure": "training curves"},
        ),
    log:
        "logs/figures/training_curves.log",
    conda:
        "../envs/reporting.yaml"
    params:
        configs=list(CONFIGS),
    script:
        "../scripts/figures.py"


rule figure_per_class_ap:
    input:
        expand(
            "results/eval/{cfg}/{split}/per_class.csv",
            cfg=CONFIGS,
            split=COMPARISON_SPLIT,
        ),
    output:
        report(
            "results/figures/per_class_ap.png",
            caption="../report/per_class_ap.rst",
            category="2. Comparison",
            labels={"figure": "per-class AP"},
        ),
    log:
        "logs/figures/per_class_ap.log",
    conda:
        "../envs/reporting.yaml"
    params:
        configs=list(CONFIGS),
        split=COMPARISON_SPLIT,
    script:
        "../scripts/figures.py"


rule campaign_timeline:
    input:
        monitors=expand("results/train/{cfg}/monitor.csv", cfg=CONFIGS),
    output:
        figure=report(
            "results/figures/campaign_timeline.png",
            caption="../report/campaign_timeline.rst",
            category="2. Comparison",
            labels={"figure": "campaign timeline"},
        ),
        usage="results/summary/device_usage.csv",
    log:
        "logs/figures/campaign_timeline.log",
    conda:
        "../envs/reporting.yaml"
    params:
        configs=list(CONFIGS),
    script:
        "../scripts/campaign_timeline.py"


rule figure_imgsz_study:
    input:
        expand("results/study/{cfg}.csv", cfg=STUDY_CONFIGS),
    output:
        report(
            "results/figures/imgsz_study.png",
            caption="../report/imgsz_study.rst",
            category="2. Comparison",
            labels={"figure": "image-size study"},
        ),
    log:
        "logs/figures/imgsz_study.log",
    conda:
        "../envs/reporting.yaml"
    script:
        "../scripts/figures.py"
