rule summary_table:
    input:
        train=expand(layout.TRAINING_SUMMARY, cfg=CONFIGS),
        metrics=expand(layout.EVAL_METRICS, cfg=CONFIGS, split=SPLITS),
        intervals=expand(layout.EVAL_INTERVALS, cfg=CONFIGS, split=SPLITS),
        bootstrap=expand(layout.EVAL_BOOTSTRAP, cfg=CONFIGS, split=SPLITS),
        speed=expand(layout.SPEED_TABLE, cfg=CONFIGS),
        provenance=expand(layout.TRAINING_PROVENANCE, cfg=CONFIGS),
    output:
        csv=table_in_report(layout.METRICS_CSV, "summary_table", COMPARISON_SECTION, "metrics (CSV, to download)"),
        html=table_in_report(layout.METRICS_HTML, "summary_table", COMPARISON_SECTION, "metrics (sortable)"),
        markdown=layout.METRICS_MD,
        groups=table_in_report(layout.GROUPS, "groups_table", COMPARISON_SECTION, "configurations, seeds pooled (CSV)"),
    log:
        "logs/summary_table.log",
    benchmark:
        "logs/summary_table.benchmark.tsv"
    conda:
        "../envs/reporting.yaml"
    params:
        configs=CAMPAIGN.parameters,
        comparison_keys=CAMPAIGN.comparison_keys,
        splits=SPLITS,
        bootstrap=config["evaluation"]["bootstrap"],
    script:
        "../scripts/summary_table.py"


# Each training's summary is read for the batch it really trained at.
rule findings:
    input:
        train=expand(layout.TRAINING_SUMMARY, cfg=CONFIGS),
        intervals=expand(layout.EVAL_INTERVALS, cfg=CONFIGS, split=COMPARISON_SPLIT),
        bootstrap=expand(layout.EVAL_BOOTSTRAP, cfg=CONFIGS, split=COMPARISON_SPLIT),
    output:
        csv=table_in_report(layout.FINDINGS_CSV, "findings", COMPARISON_SECTION, "1. findings (CSV, to download)"),
        html=table_in_report(layout.FINDINGS_HTML, "findings", COMPARISON_SECTION, "1. findings (sortable)"),
    log:
        "logs/findings.log",
    benchmark:
        "logs/findings.benchmark.tsv"
    conda:
        "../envs/reporting.yaml"
    params:
        runs=CAMPAIGN.findings_runs,
        split=COMPARISON_SPLIT,
        metric=config["evaluation"]["findings_metric"],
        bootstrap=config["evaluation"]["bootstrap"],
    script:
        "../scripts/findings.py"


rule campaign_timeline:
    input:
        monitors=expand(layout.TRAINING_MONITOR, cfg=CONFIGS),
    output:
        figure=figure_in_report("campaign_timeline", COMPARISON_SECTION, "campaign timeline"),
        usage=layout.DEVICE_USAGE,
    log:
        "logs/figures/campaign_timeline.log",
    benchmark:
        "logs/campaign_timeline.benchmark.tsv"
    conda:
        "../envs/reporting.yaml"
    params:
        configs=list(CONFIGS),
    script:
        "../scripts/campaign_timeline.py"


# The comparison figures (layout.SUMMARY_FIGURES), each its own job: any one is rebuilt alone.
rule figure:
    input:
        figure_input,
    output:
        in_report(layout.FIGURE, "figure", COMPARISON_SECTION, figure_labels),
    log:
        "logs/figures/{figure}.log",
    benchmark:
        "logs/figure/{figure}.benchmark.tsv"
    conda:
        "../envs/reporting.yaml"
    params:
        configs=list(CONFIGS),
        split=COMPARISON_SPLIT,
    script:
        "../scripts/figures.py"
