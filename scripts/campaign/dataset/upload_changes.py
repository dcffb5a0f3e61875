"""What changed in the raw upload since the dataset was cleaned: files added, changed, removed, by group.

The cleaning report has a row for every uploaded file; a file now in the
upload without a row was added, a row without a file was removed, and a file
written after the manifest (the cleaning's last output) was changed. This is
what makes Snakemake clean again and every training run again; the plan says
it in these words, with what it costs.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from campaign.dataset.upload_files import IMAGE_SUFFIXES, is_metadata


@dataclass
class UploadChanges:
    added: list[str] = field(default_factory=list)  # paths relative to the upload folder
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    cleaned_at: float | None = None  # when the dataset was cleaned (the manifest's time)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def describe(self) -> str:
        """'1 image added in group alpha; 2 label files changed in groups bravo, charlie'."""
        parts = []
        for what, paths in (("added", self.added), ("changed", self.changed), ("removed", self.removed)):
            kinds = Counter("image" if Path(p).suffix.lower() in IMAGE_SUFFIXES else "other" for p in paths)
            groups = sorted({p.split("/")[0] for p in paths})
            where = f"in group{'s' if len(groups) > 1 else ''} {', '.join(groups)}"
            counted = [f"{n} image{'s' if n > 1 else ''}" for n in [kinds["image"]] if n]
            counted += [f"{n} other file{'s' if n > 1 else ''} (labels, lists)" for n in [kinds["other"]] if n]
            if counted:
                parts.append(f"{' and '.join(counted)} {what} {where}")
        return "; ".join(parts)


def upload_changes(raw: Path, report_csv: Path, manifest_csv: Path) -> UploadChanges | None:
    """The changes since cleaning; None where the dataset was never cleaned here."""
    if not report_csv.is_file() or not manifest_csv.is_file():
        return None
    with open(report_csv, newline="") as stream:
        # A "missing" row names the label an image lacked: no file of the upload.
        reported = {row["source"] for row in csv.DictReader(stream) if row.get("action") != "missing"}
    cleaned_at = manifest_csv.stat().st_mtime
    now = {
        path.relative_to(raw).as_posix(): path.stat().st_mtime
        for path in raw.rglob("*")
        if path.is_file() and not any(is_metadata(part) for part in path.relative_to(raw).parts)
    }
    return UploadChanges(
        added=sorted(set(now) - reported),
        changed=sorted(p for p, mtime in now.items() if p in reported and mtime > cleaned_at),
        removed=sorted(reported - set(now)),
        cleaned_at=cleaned_at,
    )
