# Train and compare object detectors on a shared GPU server, reproducibly.
# Stages: clean -> split -> (pretrain) -> train -> evaluate -> speed -> summary -> report.


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/dataset.smk"
include: "rules/pretrain.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/summary.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
