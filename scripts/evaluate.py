"""Rule evaluate: metrics of one configuration on one split, plus Ultralytics' plots."""

import shutil
from pathlib import Path

import yaml

from campaign.evaluation import evaluate, write_metrics
from campaign.io import job_logger
from campaign.yolo_env import prepare_ultralytics, select_device

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = job_logger(snakemake.log[0])
out_dir = Path(snakemake.output.metrics).parent
prepare_ultralytics(out_dir / ".ultralytics", tensorboard=False)
device = select_device(snakemake.params.gpus)
names = list(yaml.safe_load(Path(snakemake.input.dataset).read_text())["names"].values())
metrics = evaluate(
    Path(snakemake.input.weights),
    Path(snakemake.input.dataset),
    snakemake.wildcards.split,
    snakemake.params.imgsz,
    snakemake.params.batch,
    device,
    out_dir,
)
shutil.copyfile(out_dir / "confusion_matrix_normalized.png", snakemake.output.confusion)
overall = write_metrics(
    metrics,
    names,
    Path(snakemake.output.metrics),
    Path(snakemake.output.per_class),
    {"split": snakemake.wildcards.split, "config": snakemake.wildcards.cfg, "device": device},
)
log.info("%s on %s: %s", snakemake.wildcards.cfg, snakemake.wildcards.split, overall)
