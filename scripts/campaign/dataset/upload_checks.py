"""Checks of a raw class upload as a whole, before any job: what is wrong, and what to do about it.

Cheap (file names and class files only), so that the workflow runs them at
parse time and a bad upload is the first thing on screen. Also the mapping of
each group's own class ids onto the campaign's classes, which cleaning uses.
"""

from __future__ import annotations

import difflib
import hashlib
from collections import Counter
from pathlib import Path

from campaign.dataset.upload_files import loose_entries
from campaign.dataset.uploads import CLASS_FILES, GroupUpload, discover_upload


class CleaningError(ValueError):
    """A problem with the upload that needs a person: says which group and what to do."""


def class_mapping(
    group: GroupUpload, classes: list[str], explicit: dict[str, str | None] | None, source: str | None = None
) -> tuple[dict[int, int | None], dict[int, str], set[int]]:
    """Map local class ids to global ids for the labels read with one class list: (mapping, names, dropped ids).

    `source` is that class list (a path in the group, as UploadedImage.class_source
    gives it); None for labels under no list, which only the config can name.
    The list's names are matched to the global names, ignoring case and
    surrounding spaces; an explicit `dataset.class_map.<group>` in the config
    wins where it names a class (by local id or local name), and maps it to
    null to drop its boxes on purpose. Names matched by neither map to None.
    """
    lookup = {name.strip().lower(): index for index, name in enumerate(classes)}
    if source is None and not explicit:
        raise CleaningError(
            f"group {group.name!r} ({group.root}) has labels but no class names: none of "
            f"{', '.join(CLASS_FILES)} was uploaded. Add dataset.class_map.{group.name} to "
            "the campaign's config file, mapping the group's class ids to names in dataset.classes"
        )
    local_names = dict(group.class_lists[source]) if source is not None else {}
    mapping: dict[int, int | None] = {local: lookup.get(name.strip().lower()) for local, name in local_names.items()}
    dropped: set[int] = set()
    by_name = {name.strip().lower(): local for local, name in local_names.items()}
    for key, target in (explicit or {}).items():
        local = int(key) if str(key).strip().isdigit() else by_name.get(str(key).strip().lower())
        if local is None:
            raise CleaningError(
                f"dataset.class_map.{group.name}: {key!r} is neither a class id nor one of "
                f"the group's class names {sorted(by_name)}"
            )
        local_names.setdefault(local, str(key) if target is None else target)
        if target is None:
            mapping[local] = None
            dropped.add(local)
        elif target.strip().lower() in lookup:
            mapping[local] = lookup[target.strip().lower()]
        else:
            raise CleaningError(f"dataset.class_map.{group.name}.{key}: {target!r} is not in dataset.classes {classes}")
    return mapping, local_names, dropped


def unmapped_classes_error(unmapped: dict[str, list[str]], classes: list[str]) -> CleaningError:
    """One error for every group's class names that match none of dataset.classes, with the lines to add."""
    lines = [f"class names that match none of dataset.classes {classes}:"]
    lines += [f"  group {group}: {', '.join(map(repr, names))}" for group, names in sorted(unmapped.items())]
    lines.append(
        "Add to the campaign's config file, with each CLASS replaced by one of dataset.classes "
        "(or by null to drop that class's boxes on purpose):"
    )
    lines += ["dataset:", "  class_map:"]
    lines += [
        f"    {group}: {{{', '.join(f'{name}: CLASS' for name in names)}}}" for group, names in sorted(unmapped.items())
    ]
    return CleaningError("\n".join(lines))


def shared_label_problems(group: GroupUpload) -> list[str]:
    """A label that several different pictures would take (`IMG_3.jpg`, `IMG_3.png`, one `IMG_3.txt`).

    Its boxes can be right for one of them at most, and nothing says which:
    the plan stops naming them. Identical files are no problem: cleaning
    keeps one and reports the other as its duplicate.
    """
    by_label: dict[Path, list[Path]] = {}
    for image in group.images:
        if image.label is not None and not (image.converted and image.converted.image_name):  # COCO: one file for all
            by_label.setdefault(image.label, []).append(image.path)
    problems = []
    for label, images in sorted(by_label.items()):
        if len(images) < 2 or len({hashlib.sha256(path.read_bytes()).digest() for path in images}) == 1:
            continue
        names = " and ".join(path.relative_to(group.root).as_posix() for path in sorted(images))
        problems.append(
            f"group {group.name}: {names} are different pictures sharing one label, "
            f"{label.relative_to(group.root).as_posix()}: its boxes fit one of them at most. Give each picture "
            "a name of its own with its own label file, or remove the picture that does not belong"
        )
    return problems


def upload_errors(
    groups: list[GroupUpload],
    classes: list[str],
    class_maps: dict[str, dict],
    background_groups: list[str],
    prefer_groups: list[str] = (),
) -> list[str]:
    """What is wrong with the upload as a whole, one message per problem, each saying what to do.

    Cheap (file names and class files only): the workflow runs it before
    planning any job, so that a bad upload is the first thing on screen.
    """
    problems = []
    unmapped: dict[str, list[str]] = {}
    for group in groups:
        problems += group.problems
        uploaded = group.orphan_labels + [path for path, _, _, _ in group.other_files]
        refused = [path for path, action, _ in group.skipped if action != "ignored"]  # each has its report row
        if not group.images and not uploaded and not refused:
            problems.append(
                f"group {group.name}: the folder {group.root} is empty (no images, no labels): remove it, "
                "or run again once the group has uploaded"
            )
            continue
        if not group.images and uploaded:
            found = Counter(path.suffix.lower() or "(no extension)" for path in uploaded)
            listed = ", ".join(f"{count} {suffix}" for suffix, count in sorted(found.items()))
            problems.append(
                f"group {group.name}: no image that training can read in {group.root} (found: {listed}): "
                "unpack archives into the group folder and upload photos as JPEG, PNG, HEIC or TIFF"
            )
            continue
        labelled = [image for image in group.images if image.label is not None]
        problems += shared_label_problems(group)
        if group.images and not labelled and group.name not in background_groups:
            unread = [(path, detail) for path, kind, _, detail in group.other_files if kind == "annotation"]
            found = (
                f"; its {len(unread)} .xml/.json files are not labels read here ({unread[0][0].name}: "
                f"{unread[0][1].removeprefix('not read: ')})"
                if unread
                else ""
            )
            problems.append(
                f"group {group.name}: {len(group.images)} images and not one label file "
                "(YOLO labels go in a labels/ folder beside images/, one <image name>.txt each; Pascal VOC .xml "
                f"beside each image, a COCO .json or LabelMe .json are read too){found}. Upload "
                f"its labels, or add {group.name} to dataset.background_groups to train on its images "
                "as background images (no objects) on purpose"
            )
        for source in sorted({image.class_source for image in labelled}, key=str):
            try:
                mapping, names, dropped = class_mapping(group, classes, class_maps.get(group.name), source)
            except CleaningError as error:
                problems.append(str(error))
                continue
            for local, index in sorted(mapping.items()):
                if index is None and local not in dropped and names[local] not in unmapped.get(group.name, []):
                    unmapped.setdefault(group.name, []).append(names[local])
    if unmapped:
        problems.append(str(unmapped_classes_error(unmapped, classes)))
    names = sorted(group.name for group in groups)
    for key, listed in (("background_groups", background_groups), ("prefer_groups", prefer_groups)):
        for index, name in enumerate(listed):
            if name not in names:
                problems.append(f"dataset.{key}[{index}]: {name!r} is not a group of the upload ({names})")
    for name in sorted(set(class_maps) - set(names)):
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]}?" if close else f"the groups are {names}"
        problems.append(f"dataset.class_map.{name}: {name!r} is not a group of the upload ({hint})")
    return problems


def check_upload(
    raw: Path,
    classes: list[str],
    class_maps: dict[str, dict],
    background_groups: list[str],
    prefer_groups: list[str] = (),
) -> list[GroupUpload]:
    """The upload's groups; CleaningError listing every problem of the upload (see upload_errors)."""
    groups = discover_upload(raw)
    problems = loose_entries(raw) + upload_errors(groups, classes, class_maps, background_groups, prefer_groups)
    if problems:
        raise CleaningError(f"the upload in {raw} cannot be cleaned:\n" + "\n".join(problems))
    return groups
