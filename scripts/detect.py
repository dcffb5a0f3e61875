"""Rule detect: one configuration on one video or image folder: annotated mp4 and contact sheet."""

import io
from pathlib import Path

from campaign.io import atomic_write_bytes, job_logger
from campaign.jobs import leased_device
from campaign.video import annotate_video, contact_sheet
from campaign.yolo_env import prepare_ultralytics

log = job_logger(snakemake.log[0])
out = Path(snakemake.output.video)
prepare_ultralytics(out.parent / f".ultralytics_{snakemake.wildcards.source}", tensorboard=False)
# Written beside the target and renamed at the end, so a broken job leaves no playable half video.
partial = out.with_name(f".{out.name}.partial.mp4")
with leased_device(snakemake, log) as lease:
    count, frames = annotate_video(
        Path(snakemake.input.weights),
        Path(snakemake.params.source),
        partial,
        snakemake.params.imgsz,
        lease.ultralytics_device(),
        snakemake.params.conf,
    )
buffer = io.BytesIO()
contact_sheet(frames).save(buffer, format="PNG")
atomic_write_bytes(snakemake.output.sheet, buffer.getvalue())
partial.replace(out)
log.info("%d frames annotated into %s; %d on the contact sheet", count, out, len(frames))
