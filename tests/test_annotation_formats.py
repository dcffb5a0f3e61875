"""Labels from LabelImg (Pascal VOC XML), CVAT / Label Studio (COCO JSON) and LabelMe, read like YOLO labels.

The files are made here from the demo's group alpha, cleaned once as YOLO:
each converted box must come out of cleaning as the YOLO box it was made from.
"""

import csv
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from campaign.dataset.annotation_formats import read_voc
from campaign.dataset.cleaning import clean_upload, write_outputs
from campaign.dataset.upload_checks import CleaningError, check_upload

ROOT = Path(__file__).resolve().parents[1]
ALPHA = ROOT / "demo" / "raw" / "alpha"
CLASSES = ["glasses", "lentils", "ring"]
ALPHA_NAMES = ALPHA.joinpath("classes.txt").read_text().split()  # the group's own order: ring, glasses, lentils


def clean(raw: Path, out: Path) -> tuple[dict[str, list[tuple]], dict[tuple[str, str], dict]]:
    """Boxes by image file name (class name, then the four numbers) and report rows by (source, kind)."""
    result = clean_upload(raw, out, CLASSES, {}, min_box_px=1)
    write_outputs(result, out / "report.csv", out / "manifest.csv", out / "summary.txt")
    boxes = {}
    for row in result.manifest:
        lines = (out / row["label"]).read_text().split("\n")
        name = Path(row["source"]).name
        boxes[name] = sorted((CLASSES[int(f[0])], *map(float, f[1:])) for f in (line.split() for line in lines) if f)
    with open(out / "report.csv", newline="") as stream:
        report = {(row["source"], row["kind"]): row for row in csv.DictReader(stream)}
    return boxes, report


@pytest.fixture(scope="module")
def alpha(tmp_path_factory):
    """Group alpha cleaned as uploaded (YOLO): its boxes, and its cleaned images with their sizes."""
    folder = tmp_path_factory.mktemp("alpha")
    shutil.copytree(ALPHA, folder / "raw" / "alpha")
    boxes, _ = clean(folder / "raw", folder / "out")
    sizes = {name: Image.open(ALPHA / "images" / name).size for name in boxes}
    return boxes, sizes


def corners(box: tuple, size: tuple[int, int]) -> tuple[str, float, float, float, float]:
    name, cx, cy, w, h = box
    width, height = size
    return name, (cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height


def assert_same_boxes(converted: dict, original: dict) -> None:
    assert converted.keys() == original.keys()
    for name, boxes in original.items():
        assert len(converted[name]) == len(boxes), name
        for mine, theirs in zip(converted[name], boxes):
            assert mine[0] == theirs[0] and mine[1:] == pytest.approx(theirs[1:], abs=2e-6), (name, mine, theirs)


def test_pascal_voc_files_beside_each_image_give_the_same_boxes(tmp_path, alpha):
    boxes, sizes = alpha
    group = tmp_path / "raw" / "voc"
    group.mkdir(parents=True)
    for name, image_boxes in boxes.items():
        shutil.copyfile(ALPHA / "images" / name, group / name)
        width, height = sizes[name]
        objects = "".join(
            f"<object><name>{c}</name><difficult>0</difficult><bndbox><xmin>{x0!r}</xmin><ymin>{y0!r}</ymin>"
            f"<xmax>{x1!r}</xmax><ymax>{y1!r}</ymax></bndbox></object>"
            for c, x0, y0, x1, y1 in (corners(box, sizes[name]) for box in image_boxes)
        )
        (group / f"{Path(name).stem}.xml").write_text(
            f"<annotation><folder>voc</folder><filename>{name}</filename><size><width>{width}</width>"
            f"<height>{height}</height><depth>3</depth></size>{objects}</annotation>"
        )
    converted, report = clean(tmp_path / "raw", tmp_path / "out")
    assert_same_boxes(converted, boxes)
    first = sorted(boxes)[0]
    row = report[(f"voc/{Path(first).stem}.xml", "label")]
    assert row["detail"].startswith(f"{len(boxes[first])} boxes converted from Pascal VOC XML")
    assert row["class_list"] == "(object names in the Pascal VOC files)"


def test_a_coco_file_from_cvat_or_label_studio_gives_the_same_boxes(tmp_path, alpha):
    boxes, sizes = alpha
    group = tmp_path / "raw" / "coco"
    (group / "images").mkdir(parents=True)
    # Category ids from 1, in another order than the campaign's, as CVAT writes them.
    categories = [{"id": index + 1, "name": name, "supercategory": ""} for index, name in enumerate(ALPHA_NAMES)]
    ids = {c["name"]: c["id"] for c in categories}
    images, annotations = [], []
    for number, (name, image_boxes) in enumerate(sorted(boxes.items()), start=1):
        shutil.copyfile(ALPHA / "images" / name, group / "images" / name)
        images.append({"id": number, "file_name": f"images/{name}", "width": sizes[name][0], "height": sizes[name][1]})
        for box in image_boxes:
            c, x0, y0, x1, y1 = corners(box, sizes[name])
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": number,
                    "category_id": ids[c],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                }
            )
    (group / "annotations.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    converted, report = clean(tmp_path / "raw", tmp_path / "out")
    assert_same_boxes(converted, boxes)
    assert report[("coco/annotations.json", "class-names")]["detail"] == (
        f"3 class names, for the {len(boxes)} label files they apply to"
    )


def test_labelme_files_give_the_same_boxes(tmp_path, alpha):
    boxes, sizes = alpha
    group = tmp_path / "raw" / "labelme"
    group.mkdir(parents=True)
    some = dict(sorted(boxes.items())[:10])
    for name, image_boxes in some.items():
        shutil.copyfile(ALPHA / "images" / name, group / name)
        shapes = [
            {"label": c, "points": [[x0, y0], [x1, y1]], "shape_type": "rectangle"}
            for c, x0, y0, x1, y1 in (corners(box, sizes[name]) for box in image_boxes)
        ]
        (group / f"{Path(name).stem}.json").write_text(
            json.dumps(
                {"shapes": shapes, "imagePath": name, "imageWidth": sizes[name][0], "imageHeight": sizes[name][1]}
            )
        )
    converted, _ = clean(tmp_path / "raw", tmp_path / "out")
    assert_same_boxes(converted, some)


def test_whole_pixel_corners_as_labelimg_writes_them_are_read(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(
        "<annotation><size><width>640</width><height>480</height></size><object><name> ring </name>"
        "<bndbox><xmin>10</xmin><ymin>20</ymin><xmax>110</xmax><ymax>220</ymax></bndbox></object></annotation>"
    )
    label = read_voc(path)
    assert label.boxes == [("ring", 10.0, 20.0, 110.0, 220.0)] and label.size == (640, 480)
    assert label.yolo_text({"ring": 2}, (1, 1)) == b"2 0.093750 0.250000 0.156250 0.416667\n"


def test_files_in_no_format_read_here_are_named_as_such(tmp_path):
    group = tmp_path / "raw" / "cvat"
    group.mkdir(parents=True)
    for index in range(3):
        Image.new("RGB", (32, 32), (index * 40, 0, 0)).save(group / f"frame_{index}.jpg")
    (group / "annotations.xml").write_text("<annotations><version>1.1</version><track id='0'/></annotations>")
    (group / "notes.json").write_text('{"author": "group cvat"}')
    with pytest.raises(CleaningError) as caught:
        check_upload(tmp_path / "raw", CLASSES, {}, [])
    message = str(caught.value)
    assert "group cvat: 3 images and not one label file" in message
    assert (
        "its 2 .xml/.json files are not labels read here (annotations.xml: an XML file whose root is <annotations>"
        in (message)
    )
