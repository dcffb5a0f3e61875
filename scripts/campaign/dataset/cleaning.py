"""Turn a raw class upload into one clean YOLO dataset, saying what was done.

Output names come from the uploaded paths alone, so each worker can verify
an image, parse its labels and write the cleaned pair at once, in parallel.
The main process then takes the results in upload order: it keeps the first
of several identical images (removing the later copies the workers wrote)
and fills the report and manifest. The raw upload is only ever read.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from campaign.core.io import atomic_write_csv, atomic_write_text
from campaign.dataset.images import ImageJob, InspectedImage, clean_image, output_suffix
from campaign.dataset.labels import decode_text
from campaign.dataset.upload_checks import CleaningError, check_upload, class_mapping
from campaign.dataset.upload_files import safe_stem
from campaign.dataset.uploads import UploadedImage

# class_list: on a label's row, the class list its ids were read with (a path in its group, or the config's class_map).
REPORT_FIELDS = ["source", "group", "kind", "action", "output", "detail", "class_list"]
MANIFEST_FIELDS = [
    "image",
    "label",
    "group",
    "source",
    "group_split",
    "width",
    "height",
    "boxes",
    "classes",
    "image_sha256",
    "label_sha256",
    "ahash",
]
# A report cell holds at most this many characters; longer details go whole to the side file.
DETAIL_LIMIT = 1000


def _output_names(uploads: list[tuple[UploadedImage, str]]) -> list[str]:
    """Stable, collision-free names that keep the group visible: `group__path_to_file`.

    They depend on the uploaded paths alone (not on what inspection finds), so
    that each image can be written as soon as it is inspected.
    """
    stems = []
    for upload, group in uploads:
        parts = upload.relative.rsplit(".", 1)[0].split("/")
        kept = [part for part in parts[:-1] if part.lower() != "images"] + parts[-1:]
        stems.append(f"{group}__{safe_stem('__'.join(kept))}")
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem.lower()] = counts.get(stem.lower(), 0) + 1
    names = []
    for (upload, _), stem in zip(uploads, stems):
        if counts[stem.lower()] > 1:  # e.g. "a b.jpg" and "a_b.jpg"
            stem += "_" + hashlib.sha256(upload.relative.encode()).hexdigest()[:8]
        names.append(stem)
    return names


@dataclass
class CleaningResult:
    report: list[dict] = field(default_factory=list)
    manifest: list[dict] = field(default_factory=list)
    dropped_boxes: dict[str, int] = field(default_factory=dict)  # label lines not in the dataset, by reason
    excluded_images: int = 0  # readable images left out because their labels could not be used
    conflicts: list[str] = field(default_factory=list)  # identical images whose labels disagree

    def count_dropped(self, reason: str, count: int) -> None:
        if count:
            self.dropped_boxes[reason] = self.dropped_boxes.get(reason, 0) + count

    def dropped_line(self) -> str:
        """'4 boxes dropped: 3 narrower or shorter than min_box_px 2, 1 not numeric'; '' when none were."""
        if not self.dropped_boxes:
            return ""
        by_count = sorted(self.dropped_boxes.items(), key=lambda item: (-item[1], item[0]))
        total = sum(self.dropped_boxes.values())
        return f"{total} boxes dropped: " + ", ".join(f"{count} {reason}" for reason, count in by_count)

    def warnings(self) -> list[str]:
        """What the log ends with, so that nobody misses data that will not be trained on."""
        lines = [self.dropped_line()] if self.dropped_boxes else []
        if self.excluded_images:
            lines.append(
                f"{self.excluded_images} images left out: their label file is missing or has no usable box "
                "(rather than trained on as background)"
            )
        lines += self.conflicts
        return lines

    def screen_summary(self, report_csv: Path) -> str:
        """The short block the terminal shows after cleaning: what is kept, fixed and left out, and why."""
        images = [r for r in self.report if r["kind"] == "image"]
        kept = len(self.manifest)
        fixed = sum(1 for r in images if r["action"] == "fixed")
        boxes = sum(int(row["boxes"]) for row in self.manifest)
        groups = len({row["group"] for row in self.manifest})
        lines = [f"Cleaned dataset: {kept} images from {groups} groups ({fixed} fixed on the way), {boxes} boxes"]
        rejected: dict[str, int] = {}
        for row in images:
            if row["action"] == "rejected":
                reason = "duplicate" if row["detail"].startswith("duplicate of") else row["detail"].split(":")[0]
                rejected[reason or "rejected"] = rejected.get(reason or "rejected", 0) + 1
        if rejected:
            by_count = sorted(rejected.items(), key=lambda item: (-item[1], item[0]))
            lines.append(f"  {sum(rejected.values())} images left out: " + ", ".join(f"{n} {r}" for r, n in by_count))
        lines += [
            f"  {line}" for line in self.warnings() if not line.endswith("(rather than trained on as background)")
        ]
        lines.append(f"  every file, kept or not, and why: {report_csv}")
        return "\n".join(lines)

    def counts(self) -> dict[str, int]:
        summary: dict[str, int] = {}
        for row in self.report:
            key = f"{row['kind']} {row['action']}"
            summary[key] = summary.get(key, 0) + 1
        return summary


def box_lines(label: Path) -> int:
    """The non-blank lines of a label file: the boxes it would have given."""
    text, _ = decode_text(label.read_bytes())
    return sum(1 for line in text.splitlines() if line.strip())


def clean_upload(
    raw: Path,
    out: Path,
    classes: list[str],
    class_maps: dict[str, dict[str, str]],
    min_box_px: float = 2.0,
    workers: int = 1,
    log: logging.Logger | None = None,
    progress_every: int = 200,
    background_groups: list[str] = (),
    prefer_groups: list[str] = (),
    max_pixels: int = 120_000_000,
) -> CleaningResult:
    """Clean the whole upload into `out/images` and `out/labels`."""
    log = log or logging.getLogger(__name__)
    groups = check_upload(raw, classes, class_maps, background_groups, prefer_groups)
    result = CleaningResult()
    jobs = []
    for group in groups:
        for path, action, detail in group.notes:
            result.report.append(_row(raw, path, group.name, "split-list", action, "", detail))
        metadata = [path for path, action, _ in group.skipped if action == "ignored"]
        if metadata:
            log.info("group %s: %d operating-system metadata files ignored", group.name, len(metadata))
        for path, action, reason in group.skipped:
            if action != "ignored":
                log.warning("group %s: %s %s: %s", group.name, action, path.relative_to(raw), reason)
            result.report.append(_row(raw, path, group.name, "file", action, "", reason))
        for orphan in group.orphan_labels:
            result.report.append(_row(raw, orphan, group.name, "label", "rejected", "", "no image with this name"))
            result.count_dropped("label file without its image", box_lines(orphan))
        for path, kind, action, detail in group.other_files:
            result.report.append(_row(raw, path, group.name, kind, action, "", detail))
        mappings = {}
        for source in {image.class_source for image in group.images if image.label is not None}:
            mappings[source] = class_mapping(group, classes, class_maps.get(group.name), source)
            for local in sorted(mappings[source][2]):
                log.warning(
                    "group %s: class %r mapped to null: its boxes are dropped", group.name, mappings[source][1][local]
                )
        if not mappings:  # a label-less group accepted in dataset.background_groups
            log.warning("group %s: no labels; its images are background images (dataset.background_groups)", group.name)
        log.info(
            "group %s: %d images, classes from %s",
            group.name,
            len(group.images),
            "config" if class_maps.get(group.name) else ", ".join(sorted(map(str, mappings)) or ["-"]),
        )
        for image in group.images:
            mapping, names, _ = mappings.get(image.class_source, ({}, {}, set()))
            background_ok = group.name in background_groups
            jobs.append((image, group.name, mapping, names, background_ok))

    stems = _output_names([(image, group) for image, group, _, _, _ in jobs])
    plan = _OutputPlan(raw, out, result, prefer_groups, mapped_groups={g for g, m in class_maps.items() if m})
    image_jobs = [
        ImageJob(image, group, mapping, names, min_box_px, out, stem, background_ok, max_pixels)
        for (image, group, mapping, names, background_ok), stem in zip(jobs, stems)
    ]
    # Chunks amortise the pool's overhead on thousands of images, yet leave every worker a share of a few dozen.
    chunksize = max(1, min(32, len(image_jobs) // (4 * workers)))
    with ProcessPoolExecutor(workers) if workers > 1 else _Serial() as pool:
        for index, record in enumerate(pool.map(clean_image, image_jobs, chunksize=chunksize), start=1):
            plan.add(record)
            if index % progress_every == 0 or index == len(image_jobs):
                log.info("inspected and wrote %d/%d images", index, len(image_jobs))
    result.manifest.sort(key=lambda row: row["image"])
    result.report.sort(key=lambda row: (row["source"], row["kind"]))
    lost = lost_groups([group.name for group in groups if group.images], result)
    if lost:
        raise CleaningError(" ".join(lost))
    return result


def lost_groups(names: list[str], result: CleaningResult) -> list[str]:
    """A sentence for each group with images of which none could be kept: by reason, with examples.

    Like an empty group, it stops the run before anything trains: its photos
    would otherwise vanish from the dataset, noticed only in the log. Images
    kept under another group (identical photos) do not count as lost.
    """
    kept = {row["group"] for row in result.manifest}
    said = []
    for name in names:
        rows = [r for r in result.report if r["group"] == name and r["kind"] == "image"]
        copies = ("duplicate of", "conflict: the same image as")  # the picture itself is in the dataset
        if name in kept or not rows or all(r["detail"].startswith(copies) for r in rows):
            continue
        reasons: dict[str, list[str]] = {}
        for row in rows:
            reasons.setdefault(row["detail"].split(":")[0] or "rejected", []).append(row["source"])
        parts = [
            f"{len(sources)} {reason} (e.g. {', '.join(sources[:2])})"
            for reason, sources in sorted(reasons.items(), key=lambda item: -len(item[1]))
        ]
        said.append(
            f"Group {name!r}: none of its {len(rows)} images can be used: {'; '.join(parts)}. Fix or replace "
            f"those files in {name}/ (the raw upload is never changed), or remove the group's folder; "
            "cleaning_report.csv of an earlier run lists every file."
        )
    return said


class _OutputPlan:
    """Takes the cleaned images in upload order: keeps one of identical images; fills the report and manifest.

    Upload order makes the first of several identical images the one kept,
    whatever the number of workers, unless their labels disagree and
    dataset.prefer_groups ranks a later one's group higher.
    """

    def __init__(
        self,
        raw: Path,
        out: Path,
        result: CleaningResult,
        prefer_groups: list[str] = (),
        mapped_groups: set[str] = frozenset(),
    ):
        self.mapped_groups = mapped_groups  # groups whose class ids the config maps (dataset.class_map)
        self.raw, self.result = raw, result
        self.rank = {group: index for index, group in enumerate(prefer_groups)}
        self.images_dir, self.labels_dir = out / "images", out / "labels"
        for folder in (self.images_dir, self.labels_dir):
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
        # By the hash of the image as written: the record kept, its report rows and its manifest row.
        self.kept: dict[str, tuple[InspectedImage, list[dict], dict]] = {}

    def row(self, record: InspectedImage, path: Path, kind: str, action: str, output: str, detail: str) -> dict:
        row = _row(self.raw, path, record.group, kind, action, output, detail)
        self.result.report.append(row)
        return row

    def add(self, record: InspectedImage) -> None:
        source, label = record.upload.path, record.upload.label
        if record.error or record.excluded:
            self.result.excluded_images += bool(record.excluded)
            self.row(record, source, "image", "rejected", "", record.error or record.excluded)
            if label is None:
                return
            if record.error:
                self.row(record, label, "label", "rejected", "", "its image is unreadable")
                self.result.count_dropped("image unreadable", box_lines(label))
            else:
                problems = record.fixes + [f"rejected {r}" for r in record.rejections]
                self.row(record, label, "label", "rejected", "", "; ".join(problems) or record.excluded)
                for reason, count in record.dropped.items():
                    self.result.count_dropped(reason, count)
            return
        kept = self.kept.get(record.written_sha256)
        if kept is None:
            self.keep(record)
            return
        first = kept[0]
        if first.label_sha256 == record.label_sha256:
            self.duplicate(record, first)
        elif self.rank.get(record.group, len(self.rank)) < self.rank.get(first.group, len(self.rank)):
            rows = self.retract(first)
            self.keep(record)
            self.duplicate(first, record, conflict="dataset.prefer_groups ranks its group higher", rows=rows)
        else:
            self.duplicate(record, first, conflict="it came first (dataset.prefer_groups can say otherwise)")

    def duplicate(
        self, record: InspectedImage, kept: InspectedImage, conflict: str = "", rows: list[dict] | None = None
    ) -> None:
        """A copy of a kept image: its files go and its rows say why; with other labels, it is a conflict."""
        for path in (self.images_dir / record.image_name, self.labels_dir / record.label_name):
            path.unlink(missing_ok=True)
        original = kept.upload.path.relative_to(self.raw).as_posix()
        if conflict:
            detail = (
                f"conflict: the same image as {original} (group {kept.group}) with other labels; "
                f"the labels of {original} are used: {conflict}"
            )
            self.result.conflicts.append(f"{record.upload.path.relative_to(self.raw).as_posix()}: {detail}")
            self.result.count_dropped("conflicting duplicate", len(record.boxes))
        else:
            detail = f"duplicate of {original}, with the same labels"
        if rows is None:
            rows = [self.row(record, record.upload.path, "image", "rejected", "", "")]
            if record.upload.label:
                rows.append(self.row(record, record.upload.label, "label", "rejected", "", ""))
        for row in rows:
            row.update(action="rejected", output="", detail=detail)

    def retract(self, first: InspectedImage) -> list[dict]:
        """Take back an image kept earlier whose duplicate wins a conflict; its report rows, to rewrite."""
        _, rows, manifest_row = self.kept.pop(first.written_sha256)
        self.result.manifest.remove(manifest_row)
        for path in (self.images_dir / first.image_name, self.labels_dir / first.label_name):
            path.unlink(missing_ok=True)  # each upload has an output name of its own: the winner's files stay
        return rows

    def keep(self, record: InspectedImage) -> None:
        raw = self.raw
        source = record.upload.path
        image_name, label_name = record.image_name, record.label_name
        image_fixes = ["EXIF orientation applied to the pixels"] if record.rotated else []
        if record.convert:
            image_fixes.append("converted to JPEG (YOLO training does not read this format)")
        if record.jpeg_end:
            extra = record.size - record.jpeg_end
            image_fixes.append(f"{extra} bytes after the JPEG's end removed (a motion photo's video, say)")
        elif record.jpeg_end == 0:
            image_fixes.append("re-encoded: data after the JPEG's last scan without an end marker")
        if not record.convert and output_suffix(source) != source.suffix:
            image_fixes.append("extension normalised")
        rows = [
            self.row(record, source, "image", "fixed" if image_fixes else "kept", image_name, "; ".join(image_fixes))
        ]
        if record.upload.label is None:
            detail = "no label file: kept as a background image (dataset.background_groups)"
            rows.append(self.row(record, source.with_suffix(".txt"), "label", "missing", label_name, detail))
        else:
            problems = record.fixes + [f"rejected {r}" for r in record.rejections]
            for reason, count in record.dropped.items():
                self.result.count_dropped(reason, count)
            action = "fixed" if problems else "kept"
            rows.append(self.row(record, record.upload.label, "label", action, label_name, "; ".join(problems)))
            configured = record.group in self.mapped_groups
            rows[-1]["class_list"] = f"dataset.class_map.{record.group}" if configured else record.upload.class_source
        manifest_row = {
            "image": f"images/{image_name}",
            "label": f"labels/{label_name}",
            "group": record.group,
            "source": source.relative_to(raw).as_posix(),
            "group_split": record.upload.split or "",
            "width": record.width,
            "height": record.height,
            "boxes": len(record.boxes),
            "classes": " ".join(str(c) for c in sorted({b.cls for b in record.boxes})),
            "image_sha256": record.written_sha256,
            "label_sha256": record.label_sha256,
            "ahash": record.ahash,
        }
        self.result.manifest.append(manifest_row)
        self.kept[record.written_sha256] = (record, rows, manifest_row)


class _Serial:
    """Stand-in for a process pool when one worker is asked for."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def map(function, items, chunksize=1):
        return map(function, items)


def _row(raw: Path, path: Path, group: str, kind: str, action: str, output: str, detail: str) -> dict:
    return {
        "source": path.relative_to(raw).as_posix(),
        "group": group,
        "kind": kind,
        "action": action,
        "output": output,
        "detail": detail,
        "class_list": "",
    }


def capped_report(report: list[dict]) -> tuple[list[dict], str]:
    """The report with every detail cut to DETAIL_LIMIT characters, and the side file holding the details in full.

    A label of thousands of boxes, all rejected, would otherwise make a cell
    that spreadsheets and Python's csv reader refuse.
    """
    rows, details = [], ["# Details of cleaning_report.csv longer than a cell: source, then the whole text.\n"]
    for row in report:
        if len(row["detail"]) > DETAIL_LIMIT:
            details.append(f"\n{row['source']}\n{row['detail']}\n")
            more = len(row["detail"]) - DETAIL_LIMIT
            row = {
                **row,
                "detail": f"{row['detail'][:DETAIL_LIMIT]} ... ({more} more characters in cleaning_details.txt)",
            }
        rows.append(row)
    return rows, "".join(details)


def write_outputs(
    result: CleaningResult, report_csv: Path, manifest_csv: Path, summary_txt: Path, details_txt: Path | None = None
) -> str:
    """Write the per-file report (and its long details), the summary, and last the manifest (the completion mark)."""
    rows, details = capped_report(result.report)
    if details_txt is not None:
        atomic_write_text(details_txt, details)
    atomic_write_csv(report_csv, rows, REPORT_FIELDS)
    counts = result.counts()
    images = len(result.manifest)
    boxes = sum(int(row["boxes"]) for row in result.manifest)
    background = sum(1 for row in result.manifest if int(row["boxes"]) == 0)
    lines = [
        f"Cleaned dataset: {images} images ({background} background), {boxes} boxes.",
        *(f"  {key}: {value}" for key, value in sorted(counts.items())),
    ]
    summary = "\n".join(lines) + "\n"
    atomic_write_text(summary_txt, summary)
    atomic_write_csv(manifest_csv, result.manifest, MANIFEST_FIELDS)
    return summary
