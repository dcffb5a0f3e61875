"""Bad uploads stop before any job with a message that says what is wrong and what to do."""

import pytest
from PIL import Image

from campaign.dataset.cleaning import clean_upload
from campaign.dataset.upload_checks import CleaningError, check_upload


def photo(path, shade=0, size=(64, 48)):
    """A small JPEG; different shades are different images (equal ones would be deduplicated)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, (120, 90, 60))
    image.paste((20 + 60 * shade, 200, 40 * shade), (0, 0, 16 + 8 * shade, 24))
    image.save(path)


def labelled_group(raw, name, lines, classes=("glasses", "ring")):
    photo(raw / name / "images" / "a.jpg")
    (raw / name / "labels").mkdir(parents=True, exist_ok=True)
    (raw / name / "labels" / "a.txt").write_text("\n".join(lines) + "\n")
    (raw / name / "classes.txt").write_text("\n".join(classes) + "\n")


def test_an_empty_group_folder_is_named_as_empty(tmp_path):
    labelled_group(tmp_path, "alpha", ["0 0.5 0.5 0.4 0.4"])
    (tmp_path / "late").mkdir()
    with pytest.raises(CleaningError) as error:
        check_upload(tmp_path, ["glasses", "ring"], {}, [])
    assert "group late: the folder" in str(error.value) and "is empty (no images, no labels)" in str(error.value)
    assert "class_map" not in str(error.value), "nothing about class names: it uploaded none"


def test_a_group_without_labels_stops_unless_accepted_as_background(tmp_path):
    labelled_group(tmp_path, "alpha", ["0 0.5 0.5 0.4 0.4"])
    for index in range(3):
        photo(tmp_path / "bravo" / "images" / f"b{index}.jpg", shade=index + 1)
    with pytest.raises(CleaningError, match=r"group bravo: 3 images and not one label file.*dataset.background_groups"):
        check_upload(tmp_path, ["glasses", "ring"], {}, [])
    check_upload(tmp_path, ["glasses", "ring"], {}, ["bravo"])
    with pytest.raises(CleaningError, match=r"background_groups\[0\]: 'brav' is not a group"):
        check_upload(tmp_path, ["glasses", "ring"], {}, ["brav"])
    result = clean_upload(tmp_path, tmp_path / "out", ["glasses", "ring"], {}, background_groups=["bravo"])
    boxes = {row["source"]: int(row["boxes"]) for row in result.manifest}
    assert boxes == {
        "alpha/images/a.jpg": 1,
        "bravo/images/b0.jpg": 0,
        "bravo/images/b1.jpg": 0,
        "bravo/images/b2.jpg": 0,
    }


def test_every_problem_of_the_upload_is_listed_at_once(tmp_path):
    labelled_group(tmp_path, "alpha", ["0 0.5 0.5 0.4 0.4"], classes=("lunettes", "ring"))
    (tmp_path / "late").mkdir()
    with pytest.raises(CleaningError) as error:
        check_upload(tmp_path, ["glasses", "ring"], {}, [])
    message = str(error.value)
    assert "group late" in message and "group alpha: 'lunettes'" in message
    assert "    alpha: {lunettes: CLASS}" in message


def test_the_log_line_counts_dropped_boxes_by_reason(tmp_path):
    lines = [
        "0 0.5 0.5 0.4 0.4",  # kept
        "0 0.5 0.5 0.001 0.4",  # 0.06 px wide in a 64 px image: degenerate
        "0 0.5 0.5 0.0 0.0",  # no area at all
        "x 0.5 0.5 0.4 0.4",  # not numeric
        "1 0.2 0.2 0.3 0.3",  # ring, mapped to null below
    ]
    labelled_group(tmp_path, "alpha", lines)
    result = clean_upload(tmp_path, tmp_path / "out", ["glasses", "ring"], {"alpha": {"ring": None}}, min_box_px=1)
    assert result.dropped_line() == (
        "4 boxes dropped: 2 narrower or shorter than min_box_px 1, 1 class mapped to null, 1 not numeric"
    )
    (kept,) = result.manifest
    assert kept["boxes"] == 1
