"""Labels from the annotation tools a class uses, read into the same boxes as YOLO labels.

- Pascal VOC XML (LabelImg's default; CVAT and Roboflow export it): one
  `<image stem>.xml` per image, beside it or in `Annotations/` beside
  `JPEGImages/`; corners in pixels, class names in the file.
- COCO JSON (CVAT, Label Studio, Roboflow): one file with `images`,
  `annotations` and `categories`; boxes `[x, y, width, height]` in pixels,
  matched to the images by file name.
- LabelMe JSON: one `<image stem>.json` per image with `shapes`
  (rectangles and polygons, in pixels).

Each file becomes boxes in pixels with their class names; cleaning then
writes them as YOLO lines and checks every one like an uploaded YOLO label
(report row: "converted from ..."). A file in none of these formats is
named as such in the report, never silently taken for labels.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

VOC = "Pascal VOC XML"
COCO = "COCO JSON"
LABELME = "LabelMe JSON"
# Where the class names of the per-image formats live: in every file (their key in GroupUpload.class_lists).
NAMES_IN_FILES = {VOC: "(object names in the Pascal VOC files)", LABELME: "(labels in the LabelMe files)"}
ANNOTATION_SUFFIXES = {".xml", ".json"}


class NotAnnotation(ValueError):
    """A file that is in none of the formats read here (the message says what it is instead)."""


@dataclass
class ConvertedLabel:
    """One image's boxes read from another tool's file."""

    source: Path  # the annotation file
    format: str
    boxes: list[tuple[str, float, float, float, float]] = field(default_factory=list)  # name, x0, y0, x1, y1 (px)
    size: tuple[int, int] | None = None  # the image size the file declares (width, height)
    image_name: str = ""  # COCO: the file name its entry gives

    def yolo_text(self, ids: dict[str, int], real_size: tuple[int, int]) -> bytes:
        """YOLO lines with the group's local class ids, normalised by the declared size (else the image's own)."""
        width, height = self.size or real_size
        lines = []
        for name, x0, y0, x1, y1 in self.boxes:
            cx, cy, w, h = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height
            lines.append(f"{ids[name]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
        return "".join(lines).encode()


def _number(element: ElementTree.Element | None, what: str) -> float:
    if element is None or element.text is None:
        raise NotAnnotation(f"a Pascal VOC object without {what}")
    try:
        return float(element.text)
    except ValueError:
        raise NotAnnotation(f"{what} is {element.text.strip()!r}, not a number") from None


def read_voc(path: Path) -> ConvertedLabel:
    try:
        root = ElementTree.fromstring(path.read_bytes())
    except ElementTree.ParseError as error:
        raise NotAnnotation(f"not well-formed XML ({error})") from None
    if root.tag != "annotation":
        raise NotAnnotation(f"an XML file whose root is <{root.tag}>, not a Pascal VOC <annotation>")
    label = ConvertedLabel(path, VOC)
    size = root.find("size")
    if size is not None and size.findtext("width") and size.findtext("height"):
        width, height = int(_number(size.find("width"), "width")), int(_number(size.find("height"), "height"))
        label.size = (width, height) if width > 0 and height > 0 else None
    for obj in root.iter("object"):
        name, box = (obj.findtext("name") or "").strip(), obj.find("bndbox")
        if not name or box is None:
            raise NotAnnotation("a Pascal VOC object without <name> or <bndbox>")
        corners = [_number(box.find(tag), tag) for tag in ("xmin", "ymin", "xmax", "ymax")]
        label.boxes.append((name, *corners))
    return label


def read_labelme(path: Path, data: dict) -> ConvertedLabel:
    label = ConvertedLabel(path, LABELME)
    if data.get("imageWidth") and data.get("imageHeight"):
        label.size = (int(data["imageWidth"]), int(data["imageHeight"]))
    for shape in data["shapes"]:
        points = shape.get("points") or []
        if not points or not shape.get("label"):
            raise NotAnnotation("a LabelMe shape without points or label")
        xs, ys = [float(x) for x, _ in points], [float(y) for _, y in points]
        label.boxes.append((str(shape["label"]).strip(), min(xs), min(ys), max(xs), max(ys)))
    return label


def read_coco(path: Path, data: dict) -> tuple[dict[str, ConvertedLabel], dict[int, str]]:
    """Each image's boxes by file name (as the JSON writes it, folders dropped), and the categories by id."""
    categories = {int(c["id"]): str(c["name"]).strip() for c in data["categories"]}
    by_id: dict[int, ConvertedLabel] = {}
    for image in data["images"]:
        size = (int(image["width"]), int(image["height"])) if image.get("width") and image.get("height") else None
        by_id[int(image["id"])] = ConvertedLabel(path, COCO, size=size, image_name=Path(str(image["file_name"])).name)
    for annotation in data["annotations"]:
        owner = by_id.get(int(annotation["image_id"]))
        if owner is None or annotation.get("category_id") not in categories:
            raise NotAnnotation(f"COCO annotation {annotation.get('id')} names an image or category it does not list")
        x, y, w, h = (float(v) for v in annotation["bbox"])
        owner.boxes.append((categories[annotation["category_id"]], x, y, x + w, y + h))
    return {label.image_name: label for label in by_id.values()}, categories


def json_format(data: object) -> str | None:
    if isinstance(data, dict) and {"images", "annotations", "categories"} <= data.keys():
        return COCO
    if isinstance(data, dict) and isinstance(data.get("shapes"), list):
        return LABELME
    return None


@dataclass
class FoundAnnotations:
    """What a group's XML and JSON files hold: labels by image, files read, files that are not labels."""

    labels: dict[Path, ConvertedLabel] = field(default_factory=dict)  # by image path
    class_lists: dict[str, dict[int, str]] = field(default_factory=dict)  # key -> local id -> name
    used: set[Path] = field(default_factory=set)
    unread: list[tuple[Path, str]] = field(default_factory=list)  # path, what it is instead
    orphans: list[tuple[Path, int]] = field(default_factory=list)  # an image's file without its image, boxes


def _voc_candidates(image: Path) -> list[Path]:
    """Beside the image, or in Annotations/ where the image sits in JPEGImages/ (the VOC layout)."""
    places = [image.with_suffix(".xml")]
    if image.parent.name.lower() == "jpegimages":
        places.append(image.parent.parent / "Annotations" / f"{image.stem}.xml")
    return places


def find_annotations(root: Path, images: list[Path], files: list[Path]) -> FoundAnnotations:
    """Read every XML and JSON file of a group; pair each per-image file with its image."""
    found = FoundAnnotations()
    candidates = sorted(path for path in files if path.suffix.lower() in ANNOTATION_SUFFIXES)
    per_image: dict[Path, ConvertedLabel] = {}
    coco: list[tuple[Path, dict[str, ConvertedLabel], dict[int, str]]] = []
    for path in candidates:
        try:
            if path.suffix.lower() == ".xml":
                per_image[path] = read_voc(path)
                continue
            try:
                data = json.loads(path.read_bytes())
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise NotAnnotation(f"not valid JSON ({error})") from None
            kind = json_format(data)
            if kind == COCO:
                coco.append((path, *read_coco(path, data)))
            elif kind == LABELME:
                per_image[path] = read_labelme(path, data)
            else:
                raise NotAnnotation("a JSON file in neither COCO nor LabelMe form")
        except (NotAnnotation, KeyError, TypeError, ValueError) as error:
            found.unread.append((path, str(error) if isinstance(error, NotAnnotation) else f"damaged ({error!r})"))

    names: dict[str, set[str]] = {}
    for image in images:
        for place in _voc_candidates(image) + [image.with_suffix(".json")]:
            if place in per_image and place not in found.used:
                found.labels[image] = per_image[place]
                found.used.add(place)
                names.setdefault(per_image[place].format, set()).update(b[0] for b in per_image[place].boxes)
                break
    for path, label in per_image.items():
        if path not in found.used:
            found.orphans.append((path, len(label.boxes)))
    for path, by_name, categories in coco:
        key = path.relative_to(root).as_posix()
        found.class_lists[key] = dict(sorted(categories.items()))
        found.used.add(path)
        folder = path.parent
        for image in images:
            entry = by_name.get(image.name)
            if entry is not None and image not in found.labels and image.is_relative_to(folder):
                found.labels[image] = entry
    for kind, seen in names.items():
        found.class_lists[NAMES_IN_FILES[kind]] = dict(enumerate(sorted(seen)))
    return found


def local_ids(class_list: dict[int, str]) -> dict[str, int]:
    """A class list read backwards: name -> local id, for writing converted boxes as YOLO lines."""
    return {name: local for local, name in class_list.items()}
