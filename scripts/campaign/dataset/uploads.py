"""Find what a group uploaded, whatever its folder layout.

A group folder may be laid out as
- `images/` + `labels/` with split lists `train.txt`, `val.txt`, `test.txt`;
- a Roboflow export: `train/`, `valid/`, `test/` with `images/` and `labels/`
  each, and a `data.yaml` holding the group's class names;
- a flat folder of image + txt pairs with `classes.txt` (LabelImg);
- any nesting of the above (per class, per video, per session).
Nothing has to be declared: the layout is read off the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import yaml

from campaign.dataset.annotation_formats import COCO, NAMES_IN_FILES, ConvertedLabel, find_annotations
from campaign.dataset.labels import decode_text
from campaign.dataset.upload_files import (
    IMAGE_SUFFIXES,
    files_under,
    is_metadata,
    resolved_link,
    unusable_name,
)

SPLIT_FOLDERS = {"train": "train", "valid": "val", "val": "val", "test": "test"}
SPLIT_LISTS = {"train.txt": "train", "val.txt": "val", "valid.txt": "val", "test.txt": "test"}
CLASS_FILES = ("data.yaml", "dataset.yaml", "classes.txt", "obj.names", "classes.names")


@dataclass
class UploadedImage:
    path: Path  # absolute
    relative: str  # relative to the group folder, POSIX form
    label: Path | None
    split: str | None = None  # the group's own split, if it gave one
    # The class list its labels are read with (relative to the group folder); None: the config's class_map.
    class_source: str | None = None
    label_note: str = ""  # how the label was matched, where not by its exact name
    label_problem: str = ""  # why no label could be chosen although some look like it (several candidates)
    # Labels read from another tool's file (Pascal VOC, COCO, LabelMe); `label` is that file.
    converted: ConvertedLabel | None = None


@dataclass
class GroupUpload:
    name: str
    root: Path
    images: list[UploadedImage] = field(default_factory=list)
    orphan_labels: list[Path] = field(default_factory=list)
    # Every class list of the group by its path relative to the group folder; each applies to the labels below it.
    class_lists: dict[str, dict[int, str]] = field(default_factory=dict)
    notes: list[tuple[Path, str, str]] = field(default_factory=list)  # path, action, detail
    # Class lists and files that are neither images, labels nor lists: every upload gets a report row.
    other_files: list[tuple[Path, str, str, str]] = field(default_factory=list)  # path, kind, action, detail
    # Entries never read: links leading out of the upload folder, FIFOs, sockets, devices, OS metadata.
    skipped: list[tuple[Path, str, str]] = field(default_factory=list)  # path, action, reason
    # What stops the plan: link loops, names that are not UTF-8, unreadable or clashing class lists.
    problems: list[str] = field(default_factory=list)


def _label_for(image: Path) -> Path:
    """YOLO convention: the last `images` folder in the path becomes `labels`."""
    parts = list(image.parts)
    for index in range(len(parts) - 2, -1, -1):
        if parts[index].lower() == "images":  # `Images/` + `Labels/` too
            parts[index] = {"images": "labels", "Images": "Labels", "IMAGES": "LABELS"}.get(parts[index], "labels")
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _read_class_names(path: Path) -> dict[int, str]:
    if path.suffix in {".yaml", ".yml"}:
        names = (yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}).get("names")
        if isinstance(names, dict):
            return {int(k): str(v) for k, v in names.items()}
        if isinstance(names, list):
            return {i: str(v) for i, v in enumerate(names)}
        raise ValueError(f"{path}: no `names:` list or mapping")
    text, _ = decode_text(path.read_bytes())
    names = [line.strip() for line in text.splitlines() if line.strip()]
    return dict(enumerate(names))


def _entry_key(entry: str) -> str | None:
    """Reduce a split-list entry to a lower-case path tail without extension.

    Handles absolute paths from another machine, Windows backslashes,
    `./relative` paths, bare names and names without extension.
    """
    entry = entry.strip().strip('"').strip()
    if not entry or entry.startswith("#"):
        return None
    path = PureWindowsPath(entry) if "\\" in entry else PurePosixPath(entry)
    name = path.name
    stem = name.rsplit(".", 1)[0] if Path(name).suffix.lower() in IMAGE_SUFFIXES else name
    return stem.lower()


def _split_from_folders(relative: PurePosixPath) -> str | None:
    for part in relative.parts[:-1]:
        if part.lower() in SPLIT_FOLDERS:
            return SPLIT_FOLDERS[part.lower()]
    return None


def _label_index(files: list[Path]) -> dict[tuple[str, str], list[Path]]:
    """Text files by folder and name, both as a person reads them: case aside, spaces around the stem aside."""
    index: dict[tuple[str, str], list[Path]] = {}
    for path in files:
        if path.suffix.lower() == ".txt":
            index.setdefault((str(path.parent).lower(), loose_name(path.name)), []).append(path)
    return index


def loose_name(name: str) -> str:
    """`PHOTO_2001 .TXT` -> `photo_2001.txt`: a label name as a person would read it."""
    stem, dot, suffix = name.rpartition(".")
    return f"{stem.strip().lower()}{dot}{suffix.strip().lower()}" if dot else name.strip().lower()


def _match_labels(images: list[Path], files: list[Path]) -> dict[Path, tuple[Path | None, str, str]]:
    """Each image's label: (label or None, how it was matched where not exactly, why none could be chosen).

    The YOLO convention first (`images/x.jpg` -> `labels/x.txt`, exactly);
    then, in the same folder, a name that differs only in case or spaces
    around the stem, where exactly one such file is left unclaimed.
    """
    present = set(files)
    expected = {image: _label_for(image) for image in images}
    claimed = {label for label in expected.values() if label in present}
    index = _label_index(files)
    matched: dict[Path, tuple[Path | None, str, str]] = {}
    for image in images:
        label = expected[image]
        if label in present:
            matched[image] = (label, "", "")
            continue
        candidates = [c for c in index.get((str(label.parent).lower(), loose_name(label.name)), []) if c not in claimed]
        if len(candidates) == 1:
            claimed.add(candidates[0])
            note = f"label {candidates[0].name!r} matched to the image {image.name!r} ignoring case and spaces"
            matched[image] = (candidates[0], note, "")
        elif candidates:
            names = ", ".join(sorted(repr(c.name) for c in candidates))
            matched[image] = (None, "", f"several label files could be its own ({names}): keep one, rename the others")
        else:
            matched[image] = (None, "", "")
    return matched


def _class_lists(group: GroupUpload, files: list[Path]) -> dict[Path, list[Path]]:
    """Read every class list of the group; the folders holding them, each with its lists."""
    folders: dict[Path, list[Path]] = {}
    for path in files:
        if path.name not in CLASS_FILES:
            continue
        relative = path.relative_to(group.root).as_posix()
        try:
            group.class_lists[relative] = _read_class_names(path)
        except (ValueError, TypeError, AttributeError, yaml.YAMLError) as error:
            problem = f"group {group.name}: class list {relative} cannot be read ({error}): fix or remove it"
            group.problems.append(problem)
            continue
        folders.setdefault(path.parent, []).append(path)
    return folders


def _class_source(group: GroupUpload, folders: dict[Path, list[Path]], places: list[Path]) -> str | None:
    """The class list that applies to a label found at `places` (its folder and its image's): the nearest above.

    A list nested deeper (an export's own data.yaml) wins over one further up
    (the group's); where two lists that differ sit at that same depth, the
    group's problems say so, naming both files: a label must never be read
    with another export's class order.
    """
    above = {folder for place in places for folder in (place, *place.parents) if folder.is_relative_to(group.root)}
    applicable = [path for folder in above for path in folders.get(folder, [])]
    if not applicable:
        distinct = {tuple(sorted(names.items())) for names in group.class_lists.values()}
        if len(distinct) == 1:  # one list in the group (or copies of it): no doubt which applies
            return next(iter(group.class_lists))
        if distinct:
            listed = " and ".join(sorted(group.class_lists))
            where = places[0].relative_to(group.root).as_posix() or "."
            group.problems.append(
                f"group {group.name}: labels in {where}/ have no class list in their folders, and the group's "
                f"lists differ ({listed}): move each list into the folder of the export it belongs to"
            )
        return None
    # The nearest applies: a list in an export's own folder wins over one further up (the group's top folder).
    # Lists at that same depth that disagree stop the plan: nothing says which the labels were made with.
    depth = max(len(path.parts) for path in applicable)
    nearest_lists = sorted(
        (path for path in applicable if len(path.parts) == depth),
        key=lambda path: (CLASS_FILES.index(path.name), str(path)),
    )
    nearest = nearest_lists[0].relative_to(group.root).as_posix()
    for other in nearest_lists[1:]:
        other_name = other.relative_to(group.root).as_posix()
        if group.class_lists[other_name] != group.class_lists[nearest]:
            problem = (
                f"group {group.name}: class lists {nearest} and {other_name}, side by side, both apply to the "
                f"labels in {places[0].relative_to(group.root).as_posix() or '.'}/ and disagree: keep the one "
                "the labels were made with"
            )
            if problem not in group.problems:
                group.problems.append(problem)
    return nearest


def annotation_class_list(converted: ConvertedLabel, root: Path) -> str:
    """The class list a converted label is read with: its COCO file's categories, or its format's names."""
    return (
        converted.source.relative_to(root).as_posix() if converted.format == COCO else NAMES_IN_FILES[converted.format]
    )


def discover_group(root: Path, upload: Path | None = None) -> GroupUpload:
    """A group's images, labels, class lists and split lists; `upload` is the whole upload folder."""
    group = GroupUpload(name=root.name, root=root)
    files, group.skipped, group.problems = files_under(root, (upload or root.parent).resolve())
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    labels = _match_labels(images, files)
    claimed = {label for label, _, _ in labels.values() if label is not None}
    class_folders = _class_lists(group, files)
    annotations = find_annotations(root, [i for i in images if labels[i][0] is None and not labels[i][2]], files)
    group.class_lists.update(annotations.class_lists)

    # Split lists at any depth; each entry is matched by file name.
    by_stem: dict[str, list[Path]] = {}
    for image in images:
        by_stem.setdefault(image.stem.lower(), []).append(image)
    listed: dict[Path, str] = {}
    for split_list in sorted(p for p in files if p.name.lower() in SPLIT_LISTS):
        split = SPLIT_LISTS[split_list.name.lower()]
        text, notes = decode_text(split_list.read_bytes())
        missing, ambiguous, repeated = [], [], 0
        for line in text.splitlines():
            key = _entry_key(line)
            if key is None:
                continue
            matches = by_stem.get(key, [])
            if not matches:
                missing.append(line.strip())
            elif len(matches) > 1:
                ambiguous.append(line.strip())
            elif matches[0] in listed:
                repeated += 1
            else:
                listed[matches[0]] = split
        detail = "; ".join(
            notes
            + ([f"{repeated} duplicate entries ignored"] if repeated else [])
            + ([f"entries with no uploaded image: {missing}"] if missing else [])
            + ([f"entries matching several images, ignored: {ambiguous}"] if ambiguous else [])
        )
        group.notes.append((split_list, "fixed" if detail else "kept", detail or "split list read"))

    for image in images:
        relative = PurePosixPath(image.relative_to(root).as_posix())
        label, note, problem = labels[image]
        places = [image.parent] + ([label.parent] if label is not None else [])
        class_source = _class_source(group, class_folders, places) if label is not None else None
        converted = annotations.labels.get(image)
        if converted is not None:  # its class names come with it, not from a class list
            label, class_source = converted.source, annotation_class_list(converted, root)
        group.images.append(
            UploadedImage(
                path=image,
                relative=str(relative),
                label=label,
                split=listed.get(image) or _split_from_folders(relative),
                class_source=class_source,
                label_note=note,
                label_problem=problem,
                converted=converted,
            )
        )

    used = {image.class_source for image in group.images}
    for relative, names in sorted(group.class_lists.items()):
        if relative in NAMES_IN_FILES.values():
            continue  # names read from each annotation file: no file of their own to report
        users = sum(image.class_source == relative for image in group.images)
        if relative in used:
            detail = f"{len(names)} class names, for the {users} label files they apply to"
            group.other_files.append((root / relative, "class-names", "kept", detail))
        else:
            detail = "not used: no label file in its folder or below it"
            group.other_files.append((root / relative, "class-names", "ignored", detail))

    claimed |= annotations.used
    for path, boxes in annotations.orphans:
        group.other_files.append((path, "label", "rejected", f"no image with this name ({boxes} boxes)"))
        claimed.add(path)
    for path, what in annotations.unread:
        read = "labels are read from YOLO .txt, Pascal VOC .xml, COCO or LabelMe .json files"
        group.other_files.append((path, "annotation", "ignored", f"not read: {what}; {read}"))
        claimed.add(path)
    for path in files:
        is_meta = path.name.lower() in SPLIT_LISTS or path.name in CLASS_FILES
        if path.suffix.lower() == ".txt" and path not in claimed and not is_meta:
            group.orphan_labels.append(path)
        elif path.suffix.lower() not in IMAGE_SUFFIXES and path not in claimed and not is_meta:
            detail = "not an image, a label, a class list or a split list"
            group.other_files.append((path, "file", "ignored", detail))
    return group


def discover_upload(raw: Path) -> list[GroupUpload]:
    """One GroupUpload per sub-folder of the raw upload, sorted by name (OS metadata folders are not groups)."""
    groups = []
    upload = raw.resolve()
    for folder in sorted(raw.iterdir()):
        if unusable_name(str(folder)) or is_metadata(folder.name):
            continue  # named by loose_entries
        target = resolved_link(str(folder)) if folder.is_symlink() else folder
        if target is None:
            continue  # a link loop, named by loose_entries
        if folder.is_symlink() and not target.is_relative_to(upload):
            group = GroupUpload(name=folder.name, root=folder)
            group.skipped.append((folder, "rejected", f"link to {target}, outside the upload folder"))
            groups.append(group)
        elif folder.is_dir():
            groups.append(discover_group(folder, upload))
    if not groups:
        raise ValueError(f"{raw}: no group sub-folders found; put each group's upload in its own folder")
    return groups
