"""Pretrained checkpoints: which official file each model takes, and whether a local file is the right one.

Checkpoints are large binary files fetched once, on a machine with
internet, by `campaign fetch-weights`; the workflow never downloads. Before
any job runs it checks every configured checkpoint against a checksum file
(`sha256sum` format, committed beside the config), so a campaign cannot
silently start from a truncated, replaced or tampered file, and it recognises
checkpoints of the original YOLOv5 repository, which Ultralytics 8 cannot
use, without loading torch.
"""

from __future__ import annotations

import hashlib
import pickletools
import zipfile
from pathlib import Path

from campaign.core.configurations import ConfigError
from campaign.core.io import atomic_write_bytes

# Where Ultralytics publishes its COCO checkpoints (the release its own downloader uses).
RELEASE_URL = "https://github.com/ultralytics/assets/releases/download/v8.4.0"


def official_name(model: str) -> str:
    """The file name of a model's COCO checkpoint in the Ultralytics release.

    The YOLOv5 files carry a `u`: they are YOLOv5u, the anchor-free head on
    YOLOv5's backbone, which is what Ultralytics builds from `yolov5m.yaml`.
    """
    family, size = model[:-1], model[-1]
    return f"{model}u.pt" if family == "yolov5" else f"{family}{size}.pt"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_checksums(path: Path) -> dict[str, str]:
    """File path (relative to the checksum file's folder, as written) -> sha256, from `sha256sum` lines."""
    checksums = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise ConfigError(f"{path}, line {number}: expected '<sha256>  <file>' as sha256sum writes it")
        checksums[name.strip()] = digest.lower()
    return checksums


def write_checksums(path: Path, checksums: dict[str, str]) -> None:

    lines = [f"{digest}  {name}\n" for name, digest in sorted(checksums.items())]
    atomic_write_bytes(path, "".join(lines).encode())


def listed_name(checkpoint: Path, checksum_file: Path) -> str:
    """How a checkpoint is named in the checksum file: relative to the file's folder."""
    try:
        return Path(checkpoint).resolve().relative_to(checksum_file.resolve().parent).as_posix()
    except ValueError:
        return Path(checkpoint).resolve().as_posix()


def _pickle_strings(data: bytes) -> set[str]:
    """Every string a pickle pushes (module and class names of the objects it rebuilds among them)."""
    strings = set()
    try:
        for _opcode, argument, _ in pickletools.genops(data):
            if isinstance(argument, str):
                strings.update(argument.split())  # GLOBAL's argument is "module name"
    except Exception:  # a pickle cut short: what was read so far still counts
        pass
    return strings


def checkpoint_format(path: Path) -> str:
    """'ultralytics', 'yolov5-legacy' (the original YOLOv5 repository, v6/v7) or 'unknown'.

    A torch checkpoint is a zip whose data.pkl names the classes of the
    pickled model; reading those names needs no torch and runs no pickle.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            pickle_name = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
            data = archive.read(pickle_name) if pickle_name else b""
    except (zipfile.BadZipFile, OSError):
        with open(path, "rb") as stream:  # torch's legacy (pre-zip) format is a plain pickle
            data = stream.read(1 << 20)
    strings = _pickle_strings(data)
    if any(s.startswith("ultralytics.") for s in strings):
        return "ultralytics"
    if "models.yolo" in strings or "models.common" in strings:
        return "yolov5-legacy"
    return "unknown"


def verify_checkpoints(weights: dict[str, str], checksum_file: Path, configfile: str = "the config") -> None:
    """Raise ConfigError unless every configured checkpoint is usable and matches its recorded SHA-256."""
    if not weights:
        return
    for model, path in sorted(weights.items()):
        if checkpoint_format(Path(path)) == "yolov5-legacy":
            raise ConfigError(
                f"weights.{model}: {path} is a checkpoint of the original YOLOv5 repository (v6.x/v7, "
                "anchor-based), which Ultralytics 8 cannot load into its models. Use the COCO checkpoint "
                f"of Ultralytics' YOLOv5u instead, {official_name(model)}: fetch it with "
                f"`campaign fetch-weights --configfile {configfile}` and set weights.{model} to "
                f"weights/{official_name(model)}"
            )
    record = f"campaign fetch-weights --configfile {configfile} --record"
    if not checksum_file.is_file():
        raise ConfigError(
            f"weights_checksums: {checksum_file} does not exist, so the configured checkpoints cannot be "
            f"checked. Fetch them with `campaign fetch-weights --configfile {configfile}` (it writes "
            f"the file), or, for checkpoints you copied yourself and trust, `{record}`"
        )
    checksums = read_checksums(checksum_file)
    for model, path in sorted(weights.items()):
        name = listed_name(Path(path), checksum_file)
        if name not in checksums:
            raise ConfigError(
                f"weights.{model}: {path} is not listed in {checksum_file}; record it with `{record}` "
                "if you trust the file"
            )
        if sha256_of(Path(path)) != checksums[name]:
            raise ConfigError(
                f"weights.{model}: {path} does not match the SHA-256 recorded in {checksum_file}: the file "
                "was replaced, cut short or altered. Fetch it again (delete it, then "
                f"`campaign fetch-weights --configfile {configfile}`)"
            )
