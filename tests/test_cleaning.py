"""Cleaning on real data: coco128 rearranged into several group layouts with defects."""

import csv
import hashlib
import random
import re
import shutil
from pathlib import Path

import pytest
import yaml
from PIL import Image

from campaign.dataset.cleaning import clean_upload, write_outputs
from campaign.dataset.upload_checks import CleaningError
from campaign.dataset.uploads import discover_upload

pytestmark = pytest.mark.slow  # coco128 cleaned

TOLERANCE = 2e-3  # pixel coordinates written with 3 decimals, outputs with 6


def read_boxes(text: str) -> list[tuple]:
    return [tuple(float(v) for v in line.split()) for line in text.splitlines() if line.strip()]


def checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def build_upload(coco: Path, raw: Path) -> dict[str, tuple[str, list[tuple]]]:
    """Write three groups in different layouts; return expected boxes by source path.

    Expected boxes are in global class ids and normalised xywh, taken from the
    original coco128 labels.
    """
    names = yaml.safe_load((coco / "data.yaml").read_text())["names"]
    names = [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)
    rng = random.Random(0)
    expected: dict[str, list[tuple]] = {}
    train = sorted((coco / "images" / "train2017").glob("*.jpg"))
    val = sorted((coco / "images" / "val2017").glob("*.jpg"))

    def original(image: Path) -> list[tuple]:
        label = image.parents[2] / "labels" / image.parent.name / f"{image.stem}.txt"
        return read_boxes(label.read_text()) if label.is_file() else []

    # Group "flat": LabelImg pairs, local ids in a shuffled class order, CRLF, tabs.
    local = names[:]
    rng.shuffle(local)
    flat = raw / "flat"
    flat.mkdir(parents=True)
    (flat / "classes.txt").write_bytes(("\r\n".join(local) + "\r\n").encode())
    for image in train[:60]:
        shutil.copyfile(image, flat / image.name)
        boxes = original(image)
        if image.stem.endswith(("250", "508")):  # coco128's own background images
            assert not boxes
        lines = [f" {local.index(names[int(b[0])])}\t{b[1]}  {b[2]} {b[3]} {b[4]} " for b in boxes]
        # An empty label file marks a background image on purpose (a missing one leaves the image out).
        (flat / f"{image.stem}.txt").write_bytes(("\r\n".join(lines) + "\r\n").encode() if boxes else b"")
        expected[f"flat/{image.name}"] = boxes

    # Group "robo": Roboflow folders, data.yaml names as a mapping, polygons, upper-case suffixes.
    robo = raw / "robo"
    robo_names = names[::-1]
    robo.mkdir(parents=True)
    (robo / "data.yaml").write_text(yaml.safe_dump({"names": dict(enumerate(robo_names))}))
    for index, image in enumerate(train[60:]):
        split = ("train", "valid", "test")[index % 3]
        suffix = ".JPG" if index % 4 == 0 else ".jpg"
        target = robo / split / "images" / f"{image.stem}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, target)
        boxes = original(image)
        lines = []
        for number, (cls, xc, yc, w, h) in enumerate(boxes):
            new = robo_names.index(names[int(cls)])
            if number % 3 == 0:  # a polygon with the box's corners
                x0, y0, x1, y1 = xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2
                lines.append(f"{new} {x0:.6f} {y0:.6f} {x1:.6f} {y0:.6f} {x1:.6f} {y1:.6f} {x0:.6f} {y1:.6f}")
            else:
                lines.append(f"{new} {xc} {yc} {w} {h}")
        label = robo / split / "labels" / f"{image.stem}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("\n".join(lines) + "\n\n")
        expected[f"robo/{target.relative_to(robo).as_posix()}"] = boxes

    # Group "lists": images/ + labels/, split lists with foreign paths, pixel coordinates.
    lists = raw / "lists"
    (lists / "images").mkdir(parents=True)
    (lists / "labels").mkdir(parents=True)
    (lists / "data.yaml").write_text(yaml.safe_dump({"names": names}))
    for index, image in enumerate(val):
        shutil.copyfile(image, lists / "images" / image.name)
        boxes = original(image)
        if index % 5 == 0:
            width, height = Image.open(image).size
            lines = [
                f"{int(c)} {x * width:.3f} {y * height:.3f} {w * width:.3f} {h * height:.3f}" for c, x, y, w, h in boxes
            ]
        else:
            lines = [f"{int(c)} {x} {y} {w} {h}" for c, x, y, w, h in boxes]
        (lists / "labels" / f"{image.stem}.txt").write_text("\n".join(lines) + "\n")
        expected[f"lists/images/{image.name}"] = boxes
    (lists / "train.txt").write_text("".join(f"D:\\coco\\images\\{p.name}\r\n" for p in val[:100]))
    (lists / "val.txt").write_text("".join(f"{p.stem}\n" for p in val[100:]) + "missing_image\n")

    # Defects: a truncated image, an image uploaded twice, a label without image.
    broken = lists / "images" / "broken.jpg"
    broken.write_bytes(val[0].read_bytes()[:2000])
    (lists / "labels" / "broken.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    shutil.copyfile(train[5], lists / "images" / "copy_of_flat.jpg")
    # Its labels are those of the original (coco's class ids are this group's): a duplicate, not a conflict.
    shutil.copyfile(coco / "labels" / "train2017" / f"{train[5].stem}.txt", lists / "labels" / "copy_of_flat.txt")
    (lists / "labels" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    return {source: (source, boxes) for source, boxes in expected.items()}


@pytest.fixture
def upload(coco128, tmp_path):
    raw = tmp_path / "raw"
    expected = build_upload(coco128, raw)
    names = yaml.safe_load((coco128 / "data.yaml").read_text())["names"]
    names = [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)
    return raw, expected, names


def clean(raw: Path, out: Path, names: list[str], workers: int = 2):
    result = clean_upload(raw, out, names, {}, min_box_px=0.0, workers=workers)
    write_outputs(result, out / "report.csv", out / "manifest.csv", out / "summary.txt")
    return result


def test_every_valid_box_survives_with_its_global_class(upload, tmp_path):
    raw, expected, names = upload
    before = checksums(raw)
    out = tmp_path / "clean"
    result = clean(raw, out, names)
    assert checksums(raw) == before, "the raw upload was modified"

    by_source = {row["source"]: row for row in result.manifest}
    compared = 0
    for source, (_, boxes) in expected.items():
        assert source in by_source, f"{source} missing from the cleaned dataset"
        written = read_boxes((out / by_source[source]["label"]).read_text())
        assert len(written) == len(set(boxes)), source
        for box in set(boxes):
            assert any(
                int(w[0]) == int(box[0]) and all(abs(a - b) < TOLERANCE for a, b in zip(w[1:], box[1:]))
                for w in written
            ), f"{source}: box {box} lost or changed"
            compared += 1
    assert compared > 1500

    report = {(row["source"], row["kind"]): row for row in csv.DictReader(open(out / "report.csv"))}
    assert report[("lists/images/broken.jpg", "image")]["action"] == "rejected"
    assert "duplicate of flat/" in report[("lists/images/copy_of_flat.jpg", "image")]["detail"]
    assert report[("lists/labels/orphan.txt", "label")]["action"] == "rejected"
    assert "missing_image" in report[("lists/val.txt", "split-list")]["detail"]
    group_splits = {row["source"]: row["group_split"] for row in result.manifest}
    assert (
        group_splits["robo/valid/images/" + Path(next(s for s in expected if s.startswith("robo/valid"))).name] == "val"
    )
    assert sum(1 for s in group_splits.values() if s == "train") >= 100


def test_ultralytics_scan_finds_no_corrupt_image_or_label_error(upload, tmp_path):
    from ultralytics.data.utils import verify_image_label

    raw, _, names = upload
    out = tmp_path / "clean"
    clean(raw, out, names)
    images = sorted((out / "images").iterdir())
    assert images
    for image in images:
        label = out / "labels" / f"{image.stem}.txt"
        result = verify_image_label((str(image), str(label), "", False, len(names), 0, 0, False))
        nm, nf, ne, nc, msg = result[5:]
        assert nc == 0 and not msg, f"{image.name}: {msg}"


def test_cleaning_twice_is_byte_identical(upload, tmp_path):
    raw, _, names = upload
    clean(raw, tmp_path / "one", names, workers=2)
    clean(raw, tmp_path / "two", names, workers=1)
    assert checksums(tmp_path / "one") == checksums(tmp_path / "two")


def test_a_group_without_class_names_gets_a_clear_error(tmp_path):
    group = tmp_path / "raw" / "nameless"
    group.mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(group / "a.jpg")
    (group / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(CleaningError, match=r"dataset.class_map.nameless"):
        clean_upload(tmp_path / "raw", tmp_path / "out", ["thing"], {})
    result = clean_upload(tmp_path / "raw", tmp_path / "out", ["thing"], {"nameless": {"0": "thing"}})
    assert result.manifest[0]["boxes"] == 1


def test_dataset_hash_changes_when_one_label_changes(tmp_path):
    from campaign.core.provenance import dataset_hash
    from campaign.dataset.splitting import assign_splits, split_lists

    raw = tmp_path / "raw"
    shutil.copytree(Path(__file__).resolve().parents[1] / "demo" / "raw" / "alpha", raw / "alpha")

    def hash_of(out: Path) -> str:
        result = clean(raw, out, ["glasses", "lentils", "ring"], workers=1)
        splits = assign_splits(result.manifest, 0, 0.2, 0.2).splits
        lists = []
        for name, text in split_lists(splits).items():
            (out / f"{name}.txt").write_text(text)
            lists.append(out / f"{name}.txt")
        return dataset_hash(out / "manifest.csv", lists)

    first = hash_of(tmp_path / "one")
    assert hash_of(tmp_path / "two") == first
    label = raw / "alpha" / "labels" / "IMG_0003.txt"
    label.write_text(label.read_text().replace("0.", "0.1", 1))
    assert hash_of(tmp_path / "three") != first


def test_exif_rotation_is_applied_to_the_pixels_the_trainer_sees(tmp_path):
    group = tmp_path / "raw" / "phone"
    group.mkdir(parents=True)
    (group / "classes.txt").write_text("thing\n")
    stored = Image.new("RGB", (60, 40), "white")  # stored landscape, shown portrait
    exif = stored.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    stored.save(group / "photo.jpg", exif=exif.tobytes())
    (group / "photo.txt").write_text("0 0.5 0.25 0.5 0.25\n")  # labelled on the displayed image
    before = checksums(tmp_path / "raw")
    result = clean_upload(tmp_path / "raw", tmp_path / "out", ["thing"], {})
    assert checksums(tmp_path / "raw") == before
    (row,) = result.manifest
    with Image.open(tmp_path / "out" / row["image"]) as written:
        assert written.size == (40, 60)
        assert written.getexif().get(0x0112, 1) == 1
    assert (row["width"], row["height"]) == (40, 60)
    assert (tmp_path / "out" / row["label"]).read_text() == "0 0.500000 0.250000 0.500000 0.250000\n"
    (image_row,) = [r for r in result.report if r["kind"] == "image"]
    assert image_row["action"] == "fixed" and "EXIF orientation" in image_row["detail"]


def test_cleaning_reports_progress_and_inspects_in_a_process_pool(upload, tmp_path, monkeypatch, caplog):
    import concurrent.futures

    import campaign.dataset.cleaning

    raw, _, names = upload
    pools = []

    class RecordingPool(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, workers):
            pools.append(workers)
            super().__init__(workers)

    monkeypatch.setattr(campaign.dataset.cleaning, "ProcessPoolExecutor", RecordingPool)
    with caplog.at_level("INFO"):
        clean_upload(raw, tmp_path / "clean", names, {}, workers=2, progress_every=50)
    assert pools == [2]
    lines = [re.search(r"inspected and wrote (\d+)/(\d+)", record.getMessage()) for record in caplog.records]
    done = [int(line.group(1)) for line in lines if line]
    total = sum(len(group.images) for group in discover_upload(raw))
    assert {int(line.group(2)) for line in lines if line} == {total}
    assert done == sorted(done) and done[-1] == total and len(done) == -(-total // 50)


def test_upload_files_are_listed_in_path_order_without_entering_linked_folders(tmp_path):
    from campaign.dataset.upload_files import files_under

    root = tmp_path / "group"
    for name in ["a/b.jpg", "a-c.jpg", "A.jpg", "a/images/x y.jpg", "é/ß.txt", "z/deep/er/f.jpg"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "outside.jpg").write_bytes(b"x")
    (root / "linked-folder").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "linked-file.jpg").symlink_to(root / "A.jpg")
    (root / "broken.jpg").symlink_to(root / "missing.jpg")

    listed, skipped, problems = files_under(root, root.resolve())
    assert problems == []
    # What pathlib's own walk gives: path order ("a/b" before "a-c"), files
    # behind links, no broken link, nothing inside a linked folder.
    assert listed == sorted(path for path in root.rglob("*") if path.is_file())
    assert listed.index(root / "a" / "b.jpg") < listed.index(root / "a-c.jpg")
    assert root / "linked-file.jpg" in listed
    assert not any("outside" in path.name or path.name == "broken.jpg" for path in listed)
    assert [(path.name, action) for path, action, _ in skipped] == [
        ("broken.jpg", "rejected"),
        ("linked-folder", "rejected"),
    ]


def _jpeg(seed: int, size=(64, 48)) -> bytes:
    import io

    import numpy as np

    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


def test_images_that_training_would_reject_or_rewrite_are_dealt_with_while_cleaning(tmp_path):
    import io

    from ultralytics.data.utils import check_image

    group = tmp_path / "raw" / "odd"
    group.mkdir(parents=True)
    (group / "classes.txt").write_text("thing\n")
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4  # what a motion photo carries after its JPEG
    photo = _jpeg(1)
    (group / "motion.jpg").write_bytes(photo + video)
    (group / "still.jpg").write_bytes(photo)  # the same photo, uploaded without its video
    # An APP1 segment holding a thumbnail's own end marker must not be taken for the image's end.
    thumbnail = b"Exif\x00\x00" + _jpeg(2, (16, 12))
    segment = b"\xff\xe1" + (len(thumbnail) + 2).to_bytes(2, "big") + thumbnail
    with_thumbnail = _jpeg(3)
    (group / "thumbnail.jpg").write_bytes(with_thumbnail[:2] + segment + with_thumbnail[2:] + video)
    gif = io.BytesIO()
    Image.new("RGB", (32, 32)).save(gif, "GIF")
    (group / "animation.jpg").write_bytes(gif.getvalue())
    Image.new("RGB", (8, 8)).save(group / "tiny.png")
    for name in ("motion", "still", "thumbnail", "animation", "tiny"):
        (group / f"{name}.txt").write_text("0 0.5 0.5 0.2 0.2\n")

    out = tmp_path / "clean"
    clean(tmp_path / "raw", out, ["thing"])
    report = {(row["source"], row["kind"]): row for row in csv.DictReader(open(out / "report.csv"))}
    motion = report[("odd/motion.jpg", "image")]
    assert motion["action"] == "fixed" and f"{len(video)} bytes after the JPEG's end removed" in motion["detail"]
    assert (out / "images" / motion["output"]).read_bytes() == photo
    assert report[("odd/still.jpg", "image")]["detail"] == "duplicate of odd/motion.jpg, with the same labels"
    thumb = report[("odd/thumbnail.jpg", "image")]
    assert (out / "images" / thumb["output"]).read_bytes() == with_thumbnail[:2] + segment + with_thumbnail[2:]
    assert "GIF data" in report[("odd/animation.jpg", "image")]["detail"]
    assert "8x8 pixels" in report[("odd/tiny.png", "image")]["detail"]
    assert {row["action"] for key, row in report.items() if key[0].startswith(("odd/animation", "odd/tiny"))} == {
        "rejected"
    }
    # Ultralytics' scan now has nothing to repair (it would rewrite the dataset's files) or drop.
    images = sorted((out / "images").iterdir())
    assert len(images) == 2
    assert [check_image(str(image))[0] for image in images] == ["", ""]
    # ... as it would have had with the upload as it was (on a copy: the check rewrites the file).
    untrimmed = tmp_path / "untrimmed.jpg"
    shutil.copyfile(group / "motion.jpg", untrimmed)
    assert "corrupt JPEG restored" in check_image(str(untrimmed))[0]


def test_a_jpeg_ends_where_its_end_marker_is_whatever_follows():
    import io

    from campaign.dataset.images import jpeg_end

    image = Image.frombytes("L", (96, 64), bytes(range(256)) * 24)
    for options in ({}, {"progressive": True}, {"restart_marker_blocks": 1}):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", **options)
        data = buffer.getvalue()
        assert jpeg_end(data) == len(data), options
        assert jpeg_end(data + b"\xff\xd9 trailing" + b"\xff\xd9") == len(data), options
        assert jpeg_end(data[: len(data) // 2]) is None, options


def class_named_upload(raw: Path) -> None:
    """Group "bravo" names its classes in French; "alpha" uses the global names."""
    for number, (group, names) in enumerate((("alpha", ["ring", "glasses"]), ("bravo", ["lunettes", "bague", "ring"]))):
        (raw / group).mkdir(parents=True)
        (raw / group / "classes.txt").write_text("\n".join(names) + "\n")
        for index in range(2):
            (raw / group / f"{group}{index}.jpg").write_bytes(_jpeg(10 * number + index))
            lines = [f"{cls} 0.5 0.5 0.3 0.3" for cls in range(len(names))]
            (raw / group / f"{group}{index}.txt").write_text("\n".join(lines) + "\n")


def test_class_names_outside_the_campaign_stop_the_cleaning_with_the_lines_to_add(tmp_path):
    class_named_upload(tmp_path / "raw")
    with pytest.raises(CleaningError) as error:
        clean_upload(tmp_path / "raw", tmp_path / "out", classes=["glasses", "ring"], class_maps={})
    message = str(error.value)
    assert "group bravo: 'lunettes', 'bague'" in message and "group alpha" not in message
    assert "    bravo: {lunettes: CLASS, bague: CLASS}" in message  # a line to complete and paste
    assert not (tmp_path / "out").exists(), "nothing is written before the classes are settled"

    # Mapped as the message says, one name to a class and one to null (dropped on purpose): it cleans.
    maps = {"bravo": {"lunettes": "glasses", "bague": None}}
    result = clean_upload(tmp_path / "raw", tmp_path / "out", classes=["glasses", "ring"], class_maps=maps)
    labels = {row["source"]: row for row in result.report if row["kind"] == "label"}
    assert "'bague' dropped (null in dataset.class_map)" in labels["bravo/bravo0.txt"]["detail"]
    written = (tmp_path / "out" / "labels").glob("bravo*.txt")
    assert sorted(line.split()[0] for path in written for line in path.read_text().splitlines()) == list("0011")
