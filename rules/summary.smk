rule summary_table:
    input:
        train=expand(layout.TRAINING_SUMMARY, cfg=CONFIGS),
        metrics=expand(layout.EVAL_METRICS, cfg=CONFIGS, split=SPLITS),
        intervals=expand(layout.EVAL_INTERVALS, cfg=CONFIGS, split=SPLITS),
        bootstrap=expand(layout.EVAL_BOOTSTRAP, cfg=CONFIGS, split=SPLITS),
        speed=expand(layout.SPEED_TABLE, cfg=CONFIGS),
        provenance=expand(layout.TRAINING_PROVENANCE, cfg=CONFIGS),
    output:
        csv=report(
            layout.METRICS_CSV,
            caption="../report/summary_table.rst",
            category=COMPARISON_SECTION,
            labels={"table": "metrics (CSV, to download)"},
        ),
        html=report(
            layout.METRICS_HTML,
            caption="../report/summary_table.rst",
            category=COMPARISON_SECTION,
            labels={"table": "metrics (sortable)"},
        ),
        markdown=layout.METRICS_MD,
        groups=report(
            layout.GROUPS,
            caption="../report/groups_table.rst",
            category=COMPARISON_SECTION,
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
        # Each training's summary: the batch it really trained at.
        train=expand(layout.TRAINING_SUMMARY, cfg=CONFIGS),
        intervals=expand(
            layout.EVAL_INTERVALS,
            cfg=CONFIGS,
            split=COMPARISON_SPLIT,
        ),
        bootstrap=expand(
            layout.EVAL_BOOTSTRAP,
            cfg=CONFIGS,
            split=COMPARISON_SPLIT,
        ),
    output:
        csv=report(
            layout.FINDINGS_CSV,
            caption="../report/findings.rst",
            category=COMPARISON_SECTION,
            labels={"table": "1. findings (CSV, to download)"},
        ),
        html=report(
            layout.FINDINGS_HTML,
            caption="../report/findings.rst",
            category=COMPARISON_SECTION,
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
            {
                "config": name,
                "group": run.group,
                "key": run.comparison_key(),
                "batch": run.batch,
            }
            for name, run in CONFIGS.items()
        ],
        split=COMPARISON_SPLIT,
        metric=config["evaluation"]["findings_metric"],
        bootstrap=config["evaluation"]["bootstrap"],
    script:
        "../scripts/findings.py"


rule figure_map_by_config:
    input:
        layout.GROUPS,
    output:
        report(
            layout.figure("map_by_config"),
            caption="../report/map_by_config.rst",
            category=COMPARISON_SECTION,
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
        layout.GROUPS,
    output:
        report(
            layout.figure("accuracy_vs_latency"),
            caption="../report/accuracy_vs_latency.rst",
            category=COMPARISON_SECTION,
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
        expand(layout.EPOCH_TABLE, cfg=CONFIGS),
    output:
        report(
            layout.figure("training_curves"),
            caption="../report/training_curves.rst",
            category=COMPARISON_SECTION,
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
            layout.EVAL_PER_CLASS,
            cfg=CONFIGS,
            split=COMPARISON_SPLIT,
        ),
    output:
        report(
            layout.figure("per_class_ap"),
            caption="../report/per_class_ap.rst",
            category=COMPARISON_SECTION,
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
        monitors=expand(layout.TRAINING_MONITOR, cfg=CONFIGS),
    output:
        figure=report(
            layout.figure("campaign_timeline"),
            caption="../report/campaign_timeline.rst",
            category=COMPARISON_SECTION,
            labels={"figure": "campaign timeline"},
        ),
        usage=layout.DEVICE_USAGE,
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
        expand(layout.STUDY_TABLE, cfg=CAMPAIGN.study_configs),
    output:
        report(
            layout.figure("imgsz_study"),
            caption="../report/imgsz_study.rst",
            category=COMPARISON_SECTION,
            labels={"figure": "image-size study"},
        ),
    log:
        "logs/figures/imgsz_study.log",
    conda:
        "../envs/reporting.yaml"
    script:
        "../scripts/figures.py"
