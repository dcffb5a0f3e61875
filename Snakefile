# Train and compare object detectors on a shared GPU server, reproducibly.
# Stages: clean -> split -> (pretrain) -> train -> evaluate -> speed -> summary -> report.


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


# Ultralytics must never reach the network: each job sets YOLO_OFFLINE and its
# own settings folder itself (scripts/campaign/yolo_env.py).


wildcard_constraints:
    cfg="|".join(CONFIGS) or "NONE",
    split="val|test",
    model=r"yolo(v5|v8|11)[nsmlx]",
    source="|".join(DETECT_SOURCES) or "NONE",


include: "rules/dataset.smk"
include: "rules/pretrain.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/summary.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
