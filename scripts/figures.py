"""Rule figure: one comparison figure (its `figure` wildcard), so any one can be rebuilt alone."""

from pathlib import Path

from campaign.core.io import job_logger
from campaign.core.layout import by_config
from campaign.reporting import figures

log = job_logger(snakemake.log[0])
inputs = [Path(path) for path in snakemake.input]
out = Path(snakemake.output[0])
draw = {
    "map_by_config": lambda: figures.map_by_config(inputs[0], out),
    "accuracy_vs_latency": lambda: figures.accuracy_vs_latency(inputs[0], out),
    "training_curves": lambda: figures.training_curves(by_config(inputs, snakemake.params.configs), out),
    "per_class_ap": lambda: figures.per_class_ap(
        by_config(inputs, snakemake.params.configs), snakemake.params.split, out
    ),
    "imgsz_study": lambda: figures.imgsz_study(inputs, out),
}
draw[snakemake.wildcards.figure]()
log.info("wrote %s", out)
