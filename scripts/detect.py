"""Rule detect: one configuration on one video or image folder: annotated mp4 and contact sheet."""

import io
from pathlib import Path

from campaign.adapters.rule_job import model_job
from campaign.core.io import atomic_write_bytes
from campaign.evaluation.video import annotate_video, contact_sheet

out = Path(snakemake.output.video)
# Written beside the target and renamed at the end, so a broken job leaves no playable half video.
partial = out.with_name(f".{out.name}.partial.mp4")
with model_job(snakemake, out.parent / f".ultralytics_{snakemake.wildcards.source}") as job:
    count, frames = annotate_video(
        Path(snakemake.input.weights),
        Path(snakemake.params.source),
        partial,
        snakemake.params.imgsz,
        job.device,
        snakemake.params.conf,
    )
buffer = io.BytesIO()
contact_sheet(frames).save(buffer, format="PNG")
atomic_write_bytes(snakemake.output.sheet, buffer.getvalue())
partial.replace(out)
job.log.info("%d frames annotated into %s; %d on the contact sheet", count, out, len(frames))
