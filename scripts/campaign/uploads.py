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

import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import yaml

from .labels import decode_text

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
SPLIT_FOLDERS = {"train": "train", "valid": "val", "val": "val", "test": "test"}
SPLIT_LISTS = {"train.txt": "train", "val.txt": "val", "valid.txt": "val", "test.txt": "test"}
CLASS_FILES = ("data.yaml", "dataset.yaml", "classes.txt", "obj.names", "classes.names")


@dataclass
class UploadedImage:
    path: Path  # absolute
    relative: str  # relative to the group folder, POSIX form
    label: Path | None
    split: str | None = None  # the group's own split, if it gave one


@dataclass
class GroupUpload:
    name: str
    root: Path
    images: list[UploadedImage] = field(default_factory=list)
    orphan_labels: list[Path] = field(default_factory=list)
    class_names: dict[int, str] | None = None
    class_source: str | None = None
    notes: list[tuple[Path, str, str]] = field(default_factory=list)  # path, action, detail
    # Class lists and files that are neither images, labels nor lists: every upload gets a report row.
    other_files: list[tuple[Path, str, str, str]] = field(default_factory=list)  # path, kind, action, detail
    # Entries never read: links leading out of the upload folder, FIFOs, sockets, devices.
    skipped: list[tuple[Path, str, str]] = field(default_factory=list)  # path, action, reason


def _label_for(image: Path) -> Path:
    """YOLO convention: the last `images` folder in the path becomes `labels`."""
    parts = list(image.parts)
    for index in range(len(parts) - 2, -1, -1):
        if parts[index] == "images":
            parts[index] = "labels"
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


def _special_kind(mode: int) -> str | None:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device")):
        if test(mode):
            return kind
    return "a device" if stat.S_ISBLK(mode) else None


def _files_under(root: Path, upload: Path) -> tuple[list[Path], list[tuple[Path, str, str]]]:
    """Every file below root, in path order, and the entries that are never read, with why.

    Links are followed only where they lead to a file inside the upload
    folder (`upload`, already resolved): a group's link must not pull a file of
    the server into the dataset. Linked folders are not entered. FIFOs,
    sockets and devices are skipped (reading one could block or never end).
    One directory scan per folder (its entries know their type), where a
    stat per file would make discovery the slowest serial step of the cleaning.
    """
    found: list[str] = []
    skipped: list[tuple[Path, str, str]] = []
    folders = [str(root)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                elif entry.is_symlink():
                    target = Path(entry.path).resolve()
                    if not target.is_relative_to(upload):
                        skipped.append((Path(entry.path), "rejected", f"link to {target}, outside the upload folder"))
                    elif not target.exists():
                        skipped.append((Path(entry.path), "rejected", f"broken link to {target}"))
                    elif target.is_file():
                        found.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    found.append(entry.path)
                else:
                    kind = _special_kind(entry.stat(follow_symlinks=False).st_mode) or "not a regular file"
                    skipped.append((Path(entry.path), "skipped", f"{kind}, never read"))
    # Ordered as paths are (part by part), not as strings: "a/b" before "a-c".
    files = [Path(path) for path in sorted(found, key=lambda path: path.split(os.sep))]
    return files, sorted(skipped)


def discover_group(root: Path, upload: Path | None = None) -> GroupUpload:
    """A group's images, labels, class list and split lists; `upload` is the whole upload folder."""
    group = GroupUpload(name=root.name, root=root)
    files, group.skipped = _files_under(root, (upload or root.parent).resolve())
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    label_of = {image: _label_for(image) for image in images}
    claimed = set(label_of.values())
    present = set(files)

    class_files = [p for p in files if p.name in CLASS_FILES]
    for candidate in CLASS_FILES:
        # The shallowest one wins: a group's own class list, not a stray copy in a sub-folder.
        matches = sorted((p for p in class_files if p.name == candidate), key=lambda p: (len(p.parts), str(p)))
        if matches:
            group.class_names = _read_class_names(matches[0])
            group.class_source = str(matches[0].relative_to(root))
            break
    for class_file in sorted(class_files):
        if group.class_source and class_file == root / group.class_source:
            detail = f"the group's class names: {len(group.class_names or {})} classes"
            group.other_files.append((class_file, "class-names", "kept", detail))
        else:
            detail = f"not read: the group's class names come from {group.class_source}"
            group.other_files.append((class_file, "class-names", "ignored", detail))

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
        label = label_of[image]
        group.images.append(
            UploadedImage(
                path=image,
                relative=str(relative),
                label=label if label in present else None,
                split=listed.get(image) or _split_from_folders(relative),
            )
        )

    for path in files:
        is_meta = path.name.lower() in SPLIT_LISTS or path.name in CLASS_FILES
        if path.suffix.lower() == ".txt" and path not in claimed and not is_meta:
            group.orphan_labels.append(path)
        elif path.suffix.lower() not in IMAGE_SUFFIXES and path not in claimed and not is_meta:
            detail = "not an image, a label, a class list or a split list"
            group.other_files.append((path, "file", "ignored", detail))
    return group


def discover_upload(raw: Path) -> list[GroupUpload]:
    """One GroupUpload per sub-folder of the raw upload, sorted by name."""
    groups = []
    upload = raw.resolve()
    for folder in sorted(raw.iterdir()):
        if folder.is_symlink() and not folder.resolve().is_relative_to(upload):
            group = GroupUpload(name=folder.name, root=folder)
            group.skipped.append((folder, "rejected", f"link to {folder.resolve()}, outside the upload folder"))
            groups.append(group)
        elif folder.is_dir():
            groups.append(discover_group(folder, upload))
    if not groups:
        raise ValueError(f"{raw}: no group sub-folders found; put each group's upload in its own folder")
    return groups


def safe_stem(text: str) -> str:
    """An ASCII file-name stem that keeps the original readable."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text).strip("._") or "image"
