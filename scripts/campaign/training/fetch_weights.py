"""Fetch the COCO checkpoints a campaign names, once, and record their SHA-256.

On a machine with internet, from the workflow folder:

    .venv/bin/campaign fetch-weights --configfile configs/course.yaml

downloads every checkpoint under `weights:` that is not there yet (the
official Ultralytics files: yolov5nu.pt ... for YOLOv5u, yolov8n.pt,
yolo11n.pt, yolo26n.pt ...) and writes their SHA-256 into the checksum file
(`weights_checksums`, default weights/SHA256SUMS): commit it, and the
workflow refuses any checkpoint that differs from it. Offline, it says which
file to copy where; `--record` records checkpoints you copied yourself.
"""

from __future__ import annotations

import argparse
import urllib.error
import urllib.request
from pathlib import Path

from campaign.core.config_file import read_config_file
from campaign.core.configurations import ConfigError
from campaign.training.checkpoints import (
    RELEASE_URL,
    listed_name,
    official_name,
    read_checksums,
    sha256_of,
    write_checksums,
)

DEFAULT_CHECKSUMS = "weights/SHA256SUMS"


def download(url: str, target: Path) -> None:
    """Download to target through a partial file, so that an interrupted download never looks complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as stream:
        while chunk := response.read(1 << 20):
            stream.write(chunk)
    partial.replace(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", default="config.yaml")
    parser.add_argument("--base-url", default=RELEASE_URL, help="where the official checkpoints are published")
    parser.add_argument("--record", action="store_true", help="only record the SHA-256 of files already there")
    args = parser.parse_args(argv)

    try:
        config = read_config_file(args.configfile)
    except ConfigError as error:
        parser.error(f"invalid configuration: {error}")
    weights = config.get("weights") or {}
    checksum_file = Path(config.get("weights_checksums") or DEFAULT_CHECKSUMS)
    if not weights:
        print(f"{args.configfile} names no checkpoint under `weights:`; nothing to fetch.")
        return 0
    checksums = read_checksums(checksum_file) if checksum_file.is_file() else {}
    missing = []
    for model, path in sorted(weights.items()):
        target = Path(path)
        url = f"{args.base_url.rstrip('/')}/{official_name(model)}"
        if not target.is_file() and not args.record:
            print(f"{model}: downloading {url} -> {target}")
            try:
                download(url, target)
            except (urllib.error.URLError, OSError) as error:
                missing.append((model, url, target, error))
                continue
        if not target.is_file():
            missing.append((model, url, target, "not there"))
            continue
        checksums[listed_name(target, checksum_file)] = sha256_of(target)
        print(f"{model}: {target} sha256 {checksums[listed_name(target, checksum_file)]}")
    write_checksums(checksum_file, checksums)
    print(f"recorded in {checksum_file} (commit it beside {args.configfile})")
    if missing:
        print("\nNot fetched; on a machine with internet download each file, copy it to the path shown, then run")
        print(f"`campaign fetch-weights --configfile {args.configfile} --record`:")
        for model, url, target, error in missing:
            print(f"  {model}: {url}\n      -> {target}   ({error})")
        return 1
    return 0
