# Train and compare object detectors on a shared GPU server, reproducibly.
# Stages: clean -> split -> (pretrain) -> train -> evaluate -> speed -> summary -> report.


import re


report: "report/workflow.rst"


include: "rules/common.smk"


# Ultralytics must never reach the network: each job sets YOLO_OFFLINE and its
# own settings folder itself (scripts/campaign/core/yolo_env.py).


# A configuration is one path component; an unknown name fails with a clear
# error in CONFIGS. (Listing every name here would put the whole campaign into
# every output pattern and slow planning down with the campaign's size.)
wildcard_constraints:
    cfg="[^/]+",
    probe="[^/]+",
    imgsz=r"\d+",
    split="train|val|test",
    format="|".join(EXPORT_FORMATS) or "NONE",
    figure="|".join(layout.SUMMARY_FIGURES),
    model="|".join(MODELS),
    # Source names are literal file names (dots, brackets, spaces), not patterns.
    source="|".join(map(re.escape, CAMPAIGN.detect_sources)) or "NONE",


include: "rules/dataset.smk"
include: "rules/pretrain.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/summary.smk"
include: "rules/plan.smk"


# Tables and figures take seconds: on a cluster they run where Snakemake runs
# instead of waiting in the scheduler's queue.
localrules:
    all,
    prepare,
    dataset_figures,
    summary_table,
    findings,
    figure,
    campaign_timeline,
    plan_probes,


# Who runs here, with which locks, and a heartbeat: a lost server's locks can
# then be told from a live one's (campaign takeover).
onstart:
    record_campaign_run(workflow, CAMPAIGN)


onsuccess:
    end_campaign_run(failed=False)


onerror:
    end_campaign_run(failed=True)


rule all:
    default_target: True
    input:
        all_outputs(),


# Before shards run side by side on several servers: the data they all read.
rule prepare:
    input:
        CAMPAIGN.shared_inputs(),
