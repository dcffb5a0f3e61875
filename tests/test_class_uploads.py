"""A class's real mistakes: every valid box kept with its right class, or named with a reason; nothing silent.

Each test uploads one mistake beside correct files and checks the exact
report row or message, that the raw files are unchanged, and that every
valid box of the upload is in the cleaned dataset with its class.
"""

import csv
import hashlib
import io
import os

import pytest
from PIL import Image

from campaign.dataset.cleaning import clean_upload, write_outputs
from campaign.dataset.upload_checks import CleaningError, check_upload

CLASSES = ["glasses", "lentils", "ring"]


def photo(path, shade=0, size=(64, 48), fmt=None, **save):
    """A small image; different shades are different images (equal ones would be deduplicated)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, (120, 90, 60))
    image.paste((20 + 7 * shade % 200, 200 - 3 * shade % 150, 40 + 5 * shade % 200), (0, 0, size[0] // 3, size[1] // 2))
    image.save(path, format=fmt, **save)


def write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))


def checksums(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def cleaned(raw, out, **options):
    """Clean, write the outputs; (result, report rows by (source, kind), labels written by source)."""
    before = checksums(raw)
    result = clean_upload(raw, out, CLASSES, options.pop("class_maps", {}), min_box_px=1, **options)
    write_outputs(result, out / "report.csv", out / "manifest.csv", out / "summary.txt", out / "details.txt")
    assert checksums(raw) == before, "the raw upload was modified"
    with open(out / "report.csv", newline="") as stream:
        report = {(row["source"], row["kind"]): row for row in csv.DictReader(stream)}
    labels = {row["source"]: (out / row["label"]).read_text().splitlines() for row in result.manifest}
    return result, report, labels


def classes_of(lines):
    return sorted(CLASSES[int(line.split()[0])] for line in lines)


def test_each_export_reads_its_labels_with_its_own_class_list(tmp_path):
    raw = tmp_path / "raw"
    # Two Roboflow exports in one group folder, their class orders reversed.
    for export, names in (("export1", ["ring", "glasses"]), ("export2", ["glasses", "ring"])):
        write(raw / "g" / export / "data.yaml", f"names: {names}\n")
        for index in range(3):
            photo(raw / "g" / export / "train" / "images" / f"p{index}.jpg", shade=index + 10 * int(export[-1]))
            write(raw / "g" / export / "train" / "labels" / f"p{index}.txt", "0 0.5 0.5 0.2 0.2\n1 0.2 0.2 0.1 0.1\n")
    result, report, labels = cleaned(raw, tmp_path / "out")
    for index in range(3):
        # Class 0 of the first export is a ring, of the second glasses.
        assert labels[f"g/export1/train/images/p{index}.jpg"][0].startswith("2 ")
        assert labels[f"g/export2/train/images/p{index}.jpg"][0].startswith("0 ")
    assert report[("g/export2/data.yaml", "class-names")]["action"] == "kept"
    assert (
        report[("g/export2/data.yaml", "class-names")]["detail"] == "2 class names, for the 3 label files they apply to"
    )


def test_the_nearest_class_list_applies_and_each_label_row_names_it(tmp_path):
    raw = tmp_path / "raw"
    # The group's top list, and two extra exports each with their own (the upload).
    write(raw / "g" / "data.yaml", "names: [glasses, lentils, ring]\n")
    photo(raw / "g" / "images" / "top.jpg", shade=1)
    write(raw / "g" / "labels" / "top.txt", "2 0.5 0.5 0.2 0.2\n")
    for export, names, shade in (("extra1", ["ring", "glasses"], 2), ("extra2", ["lentils", "ring"], 3)):
        write(raw / "g" / export / "data.yaml", f"names: {names}\n")
        photo(raw / "g" / export / "train" / "images" / "p.jpg", shade=shade)
        write(raw / "g" / export / "train" / "labels" / "p.txt", "0 0.5 0.5 0.2 0.2\n")
    _, report, labels = cleaned(raw, tmp_path / "out")
    assert classes_of(labels["g/images/top.jpg"]) == ["ring"]
    assert classes_of(labels["g/extra1/train/images/p.jpg"]) == ["ring"]
    assert classes_of(labels["g/extra2/train/images/p.jpg"]) == ["lentils"]
    assert report[("g/labels/top.txt", "label")]["class_list"] == "data.yaml"
    assert report[("g/extra1/train/labels/p.txt", "label")]["class_list"] == "extra1/data.yaml"

    # A list in labels/ is nearer than the group's data.yaml: it applies.
    raw = tmp_path / "raw2"
    write(raw / "g" / "data.yaml", "names: [ring, glasses]\n")
    write(raw / "g" / "labels" / "classes.txt", "glasses\nring\n")
    photo(raw / "g" / "images" / "a.jpg")
    write(raw / "g" / "labels" / "a.txt", "0 0.5 0.5 0.2 0.2\n")
    _, report, labels = cleaned(raw, tmp_path / "out2")
    assert classes_of(labels["g/images/a.jpg"]) == ["glasses"]
    assert report[("g/labels/a.txt", "label")]["class_list"] == "labels/classes.txt"


def test_two_class_lists_side_by_side_that_disagree_stop_the_plan_naming_both(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "g" / "data.yaml", "names: [ring, glasses]\n")
    write(raw / "g" / "classes.txt", "glasses\nring\n")
    photo(raw / "g" / "a.jpg")
    write(raw / "g" / "a.txt", "0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(CleaningError) as error:
        check_upload(raw, CLASSES, {}, [])
    assert (
        "group g: class lists data.yaml and classes.txt, side by side, both apply to the labels in ./ and disagree"
        in str(error.value)
    )

    # Lists in side folders that no label sits under: which one the labels need is anyone's guess.
    raw = tmp_path / "raw2"
    write(raw / "g" / "a" / "classes.txt", "glasses\nring\n")
    write(raw / "g" / "b" / "classes.txt", "ring\nglasses\n")
    photo(raw / "g" / "photo.jpg")
    write(raw / "g" / "photo.txt", "0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(
        CleaningError, match=r"labels in ./ have no class list in their folders, and the group's lists "
    ):
        check_upload(raw, CLASSES, {}, [])


def test_no_image_trains_as_background_because_its_label_could_not_be_read(tmp_path):
    raw = tmp_path / "raw"
    group = raw / "g"
    write(group / "classes.txt", "glasses\nlentils\nring\n")
    box = "2 0.5 0.5 0.2 0.2\n0 0.3 0.3 0.1 0.1\n"
    photo(group / "utf16.jpg", shade=1)
    write(group / "utf16.txt", "\ufeff" + box.replace("\n", "\r\n"), "utf-16-le")
    photo(group / "utf16_no_mark.jpg", shade=2)
    write(group / "utf16_no_mark.txt", box, "utf-16-le")
    photo(group / "photo_2001.jpg", shade=3)
    write(group / "PHOTO_2001.TXT", box)
    photo(group / "photo_2004.jpg", shade=4)
    write(group / "photo_2004 .txt", box)
    photo(raw / "h" / "Images" / "capital.jpg", shade=8)  # folders named with capitals
    write(raw / "h" / "Labels" / "capital.txt", box)
    write(raw / "h" / "classes.txt", "glasses\nlentils\nring\n")
    photo(group / "all_degenerate.jpg", shade=5)
    write(group / "all_degenerate.txt", "2 0.5 0.5 0.0 0.0\n1 0.5 0.5 0.001 0.4\n")
    photo(group / "unlabelled.jpg", shade=6)
    photo(group / "empty_on_purpose.jpg", shade=7)
    write(group / "empty_on_purpose.txt", "")

    result, report, labels = cleaned(raw, tmp_path / "out")
    for name in ("g/utf16", "g/utf16_no_mark", "g/photo_2001", "g/photo_2004", "h/Images/capital"):
        assert classes_of(labels[f"{name}.jpg"]) == ["glasses", "ring"], name
    assert "decoded from UTF-16" in report[("g/utf16.txt", "label")]["detail"]
    assert "decoded from UTF-16" in report[("g/utf16_no_mark.txt", "label")]["detail"]
    assert report[("g/PHOTO_2001.TXT", "label")]["detail"] == (
        "label 'PHOTO_2001.TXT' matched to the image 'photo_2001.jpg' ignoring case and spaces"
    )
    assert report[("g/photo_2004 .txt", "label")]["action"] == "fixed"
    # Left out, each with its reason, rather than trained on as background.
    assert "g/all_degenerate.jpg" not in labels and "g/unlabelled.jpg" not in labels
    assert report[("g/all_degenerate.jpg", "image")]["detail"] == (
        "not trained on: no box of its label file could be used (see the label's row)"
    )
    assert report[("g/unlabelled.jpg", "image")]["detail"].startswith("not trained on: no label file")
    assert labels["g/empty_on_purpose.jpg"] == []  # an empty label file: background on purpose
    assert result.excluded_images == 2
    assert "2 images left out" in result.warnings()[1]


def test_invalid_numbers_are_rejected_per_line_and_the_valid_box_beside_them_is_kept(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "g" / "classes.txt", "glasses\nlentils\nring\n")
    photo(raw / "g" / "a.jpg")
    lines = [
        "2 0.5 0.5 0.2 0.2",  # valid
        "0 nan 0.5 0.2 0.2",
        "0 0.5 inf 0.2 0.2",
        "1 0.5 0.5 -0.2 0.2",
        "1 1.3 0.5 0.1 0.1",  # right of the image
        "1 0.2 -0.4 0.1 0.1",  # above the image
        "1e999 0.5 0.5 0.2 0.2",
    ]
    write(raw / "g" / "a.txt", "\n".join(lines) + "\n")
    result, report, labels = cleaned(raw, tmp_path / "out")
    detail = report[("g/a.txt", "label")]["detail"]
    assert "rejected line 2: nan or infinity: '0 nan 0.5 0.2 0.2'" in detail
    assert "rejected line 3: nan or infinity: '0 0.5 inf 0.2 0.2'" in detail
    assert "rejected line 4: negative width or height: '1 0.5 0.5 -0.2 0.2'" in detail
    assert "rejected line 5: the box lies entirely outside the image" in detail
    assert "rejected line 6: the box lies entirely outside the image" in detail
    assert "rejected line 7: not numeric" in detail
    assert labels["g/a.jpg"] == ["2 0.500000 0.500000 0.200000 0.200000"]
    assert result.dropped_line() == (
        "6 boxes dropped: 2 not a finite number, 2 outside the image, 1 negative width or height, 1 not numeric"
    )


def test_nothing_is_dropped_without_a_row_or_a_message(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "g" / "classes.txt", "glasses\nlentils\nring\n")
    photo(raw / "g" / "photo.jpg")
    write(raw / "g" / "photo.txt", "0 0.5 0.5 0.2 0.2\n")
    write(raw / "g" / "orphan.txt", "0 0.5 0.5 0.2 0.2\n1 0.4 0.4 0.1 0.1\n")
    (raw / "g" / "._photo.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (raw / "g" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    write(raw / "__MACOSX" / "g" / "._photo.jpg", "resource fork")
    result, report, labels = cleaned(raw, tmp_path / "out")
    assert set(labels) == {"g/photo.jpg"}
    assert report[("g/photo.jpg", "image")]["output"] == "g__photo.jpg", "metadata must not push the name to a variant"
    assert report[("g/._photo.jpg", "file")]["detail"] == "operating-system metadata, not part of the upload"
    assert report[("g/.DS_Store", "file")]["action"] == "ignored"
    assert result.dropped_line() == "2 boxes dropped: 2 label file without its image"

    # Files outside any group folder, and a group with nothing training can read, stop the plan.
    photo(raw / "loose.jpg", shade=2)
    write(raw / "loose.txt", "0 0.5 0.5 0.2 0.2\n")
    (raw / "zipped").mkdir()
    (raw / "zipped" / "photos.zip").write_bytes(b"PK\x03\x04")
    with pytest.raises(CleaningError) as error:
        check_upload(raw, CLASSES, {}, [])
    message = str(error.value)
    assert (
        f"2 file(s) directly in {raw}, outside any group folder (loose.jpg, loose.txt): put them in a group" in message
    )
    assert "group zipped: no image that training can read" in message and "(found: 1 .zip)" in message
    assert "__MACOSX" not in message


def test_link_loops_and_names_that_are_not_utf8_stop_the_plan_with_the_path_and_the_fix(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "g" / "classes.txt", "glasses\nlentils\nring\n")
    photo(raw / "g" / "photo.jpg")
    write(raw / "g" / "photo.txt", "0 0.5 0.5 0.2 0.2\n")
    (raw / "g" / "loop").symlink_to(raw / "g" / "loop")
    (raw / "g" / "a").symlink_to(raw / "g" / "b")
    (raw / "g" / "b").symlink_to(raw / "g" / "a")
    latin1 = os.fsencode(raw / "g") + b"/caf\xe9.jpg"
    with open(latin1, "wb") as stream:
        stream.write(b"not read")
    with pytest.raises(CleaningError) as error:
        check_upload(raw, CLASSES, {}, [])
    message = str(error.value)
    assert f"{raw}/g/loop: a link that leads back to itself: remove the link" in message
    assert f"{raw}/g/a: a link that leads back to itself" in message
    assert f"{raw}/g/caf\\xe9.jpg: the file name is not UTF-8 text: rename it" in message


@pytest.mark.slow  # encoding a 12-megapixel HEIC takes seconds
def test_phone_formats_heic_and_tiff_are_cleaned_upright_with_their_boxes(tmp_path):
    from campaign.dataset.synthetic import PORTRAIT, phone_photo

    raw = tmp_path / "raw"
    write(raw / "g" / "classes.txt", "glasses\nlentils\nring\n")
    # An iPhone photo held upright: landscape pixels, EXIF orientation 6, as HEIC.
    jpeg, annotations = phone_photo(seed=3, orientation=PORTRAIT)
    with Image.open(io.BytesIO(jpeg)) as image:
        exif = image.getexif()
        image.save(raw / "g" / "IMG_0001.HEIC", format="HEIF", quality=60, exif=exif.tobytes())
    write(
        raw / "g" / "IMG_0001.txt",
        "".join(f"{CLASSES.index(a.name)} {a.xc:.6f} {a.yc:.6f} {a.w:.6f} {a.h:.6f}\n" for a in annotations),
    )
    photo(raw / "g" / "scan.tif", shade=4, fmt="TIFF")
    write(raw / "g" / "scan.txt", "1 0.5 0.5 0.3 0.3\n")
    result, report, labels = cleaned(raw, tmp_path / "out", workers=2)
    heic = report[("g/IMG_0001.HEIC", "image")]
    assert heic["output"] == "g__IMG_0001.jpg"
    assert "converted to JPEG" in heic["detail"]
    with Image.open(tmp_path / "out" / "images" / heic["output"]) as written:
        assert written.format == "JPEG" and written.size == (3024, 4032), "upright: portrait"
    assert len(labels["g/IMG_0001.HEIC"]) == len(annotations) > 0
    assert report[("g/scan.tif", "image")]["action"] == "kept" and labels["g/scan.tif"] == [
        "1 0.500000 0.500000 0.300000 0.300000"
    ]


def test_huge_images_and_huge_reports_are_bounded(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "g" / "classes.txt", "glasses\nlentils\nring\n")
    photo(raw / "g" / "big.png", size=(400, 300))
    write(raw / "g" / "big.txt", "0 0.5 0.5 0.2 0.2\n")
    photo(raw / "g" / "small.jpg", shade=3)
    write(raw / "g" / "small.txt", "0 0.5 0.5 0.2 0.2\n" + "7 0.5 0.5 0.2 0.2\n" * 2000)
    result, report, labels = cleaned(raw, tmp_path / "out", max_pixels=100_000)
    assert report[("g/big.png", "image")]["detail"] == (
        "400x300 pixels (0 megapixels), above dataset.max_pixels (0.1 megapixels): "
        "shrink the photo, or raise dataset.max_pixels"
    )
    cell = report[("g/small.txt", "label")]["detail"]
    assert len(cell) < 1100 and cell.endswith("more characters in cleaning_details.txt)")
    details = (tmp_path / "out" / "details.txt").read_text()
    assert "g/small.txt" in details and details.count("class id 7 is not among the group's classes") == 2000


def test_the_same_image_with_other_labels_in_two_groups_is_a_conflict_that_the_config_decides(tmp_path):
    raw = tmp_path / "raw"
    for group, line in (("alpha", "0 0.5 0.5 0.2 0.2\n"), ("bravo", "2 0.5 0.5 0.2 0.2\n")):
        write(raw / group / "classes.txt", "glasses\nlentils\nring\n")
        photo(raw / group / "shared.jpg")
        write(raw / group / "shared.txt", line)
    result, report, labels = cleaned(raw, tmp_path / "out")
    assert classes_of(labels["alpha/shared.jpg"]) == ["glasses"] and "bravo/shared.jpg" not in labels
    assert report[("bravo/shared.jpg", "image")]["detail"] == (
        "conflict: the same image as alpha/shared.jpg (group alpha) with other labels; the labels of "
        "alpha/shared.jpg are used: it came first (dataset.prefer_groups can say otherwise)"
    )
    assert result.conflicts and result.dropped_line() == "1 boxes dropped: 1 conflicting duplicate"

    result, report, labels = cleaned(raw, tmp_path / "out2", prefer_groups=["bravo"])
    assert classes_of(labels["bravo/shared.jpg"]) == ["ring"] and "alpha/shared.jpg" not in labels
    assert report[("alpha/shared.jpg", "image")]["action"] == "rejected"
    assert "dataset.prefer_groups ranks its group higher" in report[("alpha/shared.jpg", "image")]["detail"]
    assert sorted(p.name for p in (tmp_path / "out2" / "images").iterdir()) == ["bravo__shared.jpg"]


def test_a_group_with_no_usable_image_stops_the_cleaning_naming_it_and_why(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "good" / "classes.txt", "ring\n")
    photo(raw / "good" / "a.jpg")
    write(raw / "good" / "a.txt", "0 0.5 0.5 0.2 0.2\n")
    write(raw / "lost" / "classes.txt", "ring\n")
    for index in range(3):
        write(raw / "lost" / f"p{index}.jpg", "not a picture")
        write(raw / "lost" / f"p{index}.txt", "0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(CleaningError) as caught:
        clean_upload(raw, tmp_path / "out", CLASSES, {}, min_box_px=1)
    assert str(caught.value) == (
        "Group 'lost': none of its 3 images can be used: 3 unreadable image (e.g. lost/p0.jpg, lost/p1.jpg). "
        "Fix or replace those files in lost/ (the raw upload is never changed), or remove the group's folder; "
        "cleaning_report.csv of an earlier run lists every file."
    )


def test_a_group_whose_images_are_all_kept_under_another_is_not_lost(tmp_path):
    raw = tmp_path / "raw"
    for group in ("first", "second"):
        write(raw / group / "classes.txt", "ring\n")
        photo(raw / group / "a.jpg")
        write(raw / group / "a.txt", "0 0.5 0.5 0.2 0.2\n")
    result, report, _ = cleaned(raw, tmp_path / "out")
    assert report[("second/a.jpg", "image")]["detail"].startswith("duplicate of first/a.jpg")
    assert result.screen_summary(tmp_path / "out" / "report.csv").splitlines()[:2] == [
        "Cleaned dataset: 1 images from 1 groups (0 fixed on the way), 1 boxes",
        "  1 images left out: 1 duplicate",
    ]


def test_an_unreadable_image_is_said_without_python_object_names(tmp_path):
    from campaign.dataset.images import without_object_names

    raw = tmp_path / "raw"
    write(raw / "g" / "classes.txt", "ring\n")
    photo(raw / "g" / "a.jpg")
    write(raw / "g" / "a.txt", "0 0.5 0.5 0.2 0.2\n")
    write(raw / "g" / "b.jpg", "\x00\x01 no picture")
    _, report, _ = cleaned(raw, tmp_path / "out")
    detail = report[("g/b.jpg", "image")]["detail"]
    assert detail == "unreadable image: not a picture Pillow can decode (damaged, empty, or another kind of file)"
    said = without_object_names("cannot identify image file <_io.BytesIO object at 0x7fc28e42fa10>")
    assert said == "cannot identify image file the file"


@pytest.mark.slow
def test_the_terminal_shows_what_cleaning_kept_and_left_out_and_a_lost_group_stops_the_run(tmp_path):
    import copy
    import shutil

    from tiny_campaign import TINY, snakemake

    target = "results/dataset/manifest.csv"
    for folder in ("demo", "lost"):
        (tmp_path / folder).mkdir()
    shown = snakemake(tmp_path / "demo", "--cores", "2", target, config=TINY, check=False)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "Cleaned dataset: 340 images from 4 groups (80 fixed on the way), 730 boxes" in shown.stderr
    assert "  2 images left out: 1 duplicate, 1 unreadable image" in shown.stderr
    assert "  every file, kept or not, and why: results/dataset/cleaning_report.csv" in shown.stderr

    config = copy.deepcopy(TINY)
    raw = tmp_path / "raw"
    shutil.copytree(config["dataset"]["raw"], raw)
    write(raw / "echo" / "classes.txt", "ring\n")
    for index in range(4):
        write(raw / "echo" / f"IMG_{index}.jpg", "a download page saved as .jpg")
        write(raw / "echo" / f"IMG_{index}.txt", "0 0.5 0.5 0.2 0.2\n")
    config["dataset"]["raw"] = str(raw)
    stopped = snakemake(tmp_path / "lost", "--cores", "2", target, config=config, check=False)
    assert stopped.returncode != 0
    assert "clean_dataset stopped: Group 'echo': none of its 4 images can be used: 4 unreadable image" in stopped.stderr
    assert not (tmp_path / "lost" / target).exists()


def test_one_label_for_two_different_pictures_stops_the_plan_naming_them(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "g" / "classes.txt", "ring\n")
    photo(raw / "g" / "IMG_0003.jpg", shade=1)
    photo(raw / "g" / "IMG_0003.png", shade=2)
    write(raw / "g" / "IMG_0003.txt", "0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(CleaningError) as caught:
        check_upload(raw, CLASSES, {}, [])
    assert (
        "group g: IMG_0003.jpg and IMG_0003.png are different pictures sharing one label, IMG_0003.txt: its boxes "
        "fit one of them at most. Give each picture a name of its own with its own label file, or remove the "
        "picture that does not belong"
    ) in str(caught.value)


def test_one_label_for_two_copies_of_one_picture_keeps_one_with_its_row(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "g" / "classes.txt", "ring\n")
    photo(raw / "g" / "IMG_0003.jpg")
    (raw / "g" / "IMG_0003.jpeg").write_bytes((raw / "g" / "IMG_0003.jpg").read_bytes())
    write(raw / "g" / "IMG_0003.txt", "0 0.5 0.5 0.2 0.2\n")
    result, report, labels = cleaned(raw, tmp_path / "out")
    (kept,) = labels  # one of the two, with the label's box
    other = ({"g/IMG_0003.jpg", "g/IMG_0003.jpeg"} - {kept}).pop()
    assert report[(other, "image")]["detail"].startswith(f"duplicate of {kept}, with the same labels")
