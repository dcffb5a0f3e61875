"""Phone photos (12 megapixels, EXIF-rotated) cleaned upright and copied at a training size.

The photos are made here (scripts/campaign/dataset/synthetic.py), a few seconds each;
nothing large is committed.
"""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from campaign.dataset.cleaning import clean_upload
from campaign.dataset.resizing import resized_shape, shrink_image, split_images, write_resized_copy
from campaign.dataset.synthetic import PORTRAIT, phone_photo

CLASSES = ["glasses", "lentils", "ring"]
# Stored pixels and orientation tag as phones write them: landscape, portrait, upside down, portrait the other way.
ORIENTATIONS = {"IMG_0001": 1, "IMG_0002": PORTRAIT, "IMG_0003": 3, "IMG_0004": 8}


@pytest.fixture(scope="module")
def cleaned_phone_upload(tmp_path_factory) -> Path:
    """One group's upload of four 4032x3024 photos with labels, cleaned; the dataset.yaml of all as train."""
    root = tmp_path_factory.mktemp("phone")
    group = root / "raw" / "alpha"
    group.mkdir(parents=True)
    (group / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    for index, (stem, orientation) in enumerate(ORIENTATIONS.items()):
        data, annotations = phone_photo(seed=index, orientation=orientation)
        (group / f"{stem}.JPG").write_bytes(data)
        (group / f"{stem}.txt").write_text(
            "".join(f"{CLASSES.index(a.name)} {a.xc:.6f} {a.yc:.6f} {a.w:.6f} {a.h:.6f}\n" for a in annotations)
        )
    clean = root / "clean"
    result = clean_upload(root / "raw", clean, CLASSES, {}, workers=2)
    names = [f"./{row['image']}" for row in result.manifest]
    (clean / "train.txt").write_text("\n".join(names) + "\n")
    (clean / "val.txt").write_text("\n".join(names[:1]) + "\n")
    (clean / "test.txt").write_text("")
    (clean / "dataset.yaml").write_text(
        "train: train.txt\nval: val.txt\ntest: test.txt\nnames:\n"
        + "".join(f"  {index}: {name}\n" for index, name in enumerate(CLASSES))
    )
    return clean / "dataset.yaml"


def test_cleaning_turns_each_photo_upright_as_its_labels_describe(cleaned_phone_upload):
    images = cleaned_phone_upload.parent / "images"
    for stem, orientation in ORIENTATIONS.items():
        with Image.open(images / f"alpha__{stem}.jpg") as image:
            assert image.getexif().get(0x0112, 1) == 1
            assert image.size == ((3024, 4032) if orientation in (6, 8) else (4032, 3024))


def test_the_copy_is_what_ultralytics_would_load_from_the_full_size_photos(cleaned_phone_upload, tmp_path):
    from campaign.core.yolo_env import prepare_ultralytics

    prepare_ultralytics(tmp_path / "ultralytics", tensorboard=False)
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_yolo_dataset

    copy = tmp_path / "copy"
    result = write_resized_copy(cleaned_phone_upload, copy, 320, workers=2)
    assert (result.images, result.shrunk) == (4, 4)
    assert result.bytes_after < result.bytes_before / 20  # 3 MB photos, 130 kB PNG copies

    def loaded(dataset_yaml: Path) -> list:
        import yaml

        data = {**yaml.safe_load(dataset_yaml.read_text()), "channels": 3, "nc": len(CLASSES)}
        cfg = get_cfg(overrides={"imgsz": 320})
        dataset = build_yolo_dataset(cfg, str(dataset_yaml.parent / "train.txt"), 4, data, mode="val")
        return [(dataset.load_image(i), dataset.labels[i]) for i in range(len(dataset))]

    for (full, full_labels), (small, small_labels) in zip(loaded(cleaned_phone_upload), loaded(copy / "dataset.yaml")):
        (full_pixels, _, full_shape), (small_pixels, original_shape, small_shape) = full, small
        # Same shape as Ultralytics gives the full-size photo, and nothing left for it to resize.
        assert small_shape == full_shape == original_shape
        # Shrunk the same way and stored losslessly: the very pixels the model would have seen.
        np.testing.assert_array_equal(full_pixels, small_pixels)
        np.testing.assert_array_equal(full_labels["bboxes"], small_labels["bboxes"])
        np.testing.assert_array_equal(full_labels["cls"], small_labels["cls"])
    # The lists name the same images, shrunk ones as PNG files of the same stem.
    for split in ("train", "val", "test"):
        copied, full = split_images(copy / "dataset.yaml", split), split_images(cleaned_phone_upload, split)
        assert [(path.stem, path.suffix) for path in copied] == [(path.stem, ".png") for path in full]
        assert all(path.is_file() for path in copied)


def test_labels_and_images_no_larger_than_the_size_are_linked_not_copied(cleaned_phone_upload, tmp_path):
    copy = tmp_path / "copy"
    result = write_resized_copy(cleaned_phone_upload, copy, 5000)
    assert result.shrunk == 0
    clean = cleaned_phone_upload.parent
    for name in ("images/alpha__IMG_0001.jpg", "labels/alpha__IMG_0001.txt"):
        assert os.path.samefile(clean / name, copy / name)


@pytest.mark.parametrize(
    ("width", "height", "imgsz", "expected"),
    [
        (4032, 3024, 320, (320, 240)),
        (3024, 4032, 640, (480, 640)),
        (1000, 333, 320, (320, 107)),  # 106.56 rounded up, as Ultralytics' loader rounds
        (320, 200, 320, None),
        (100, 80, 320, None),  # never enlarged
    ],
)
def test_shrunk_shape(width, height, imgsz, expected):
    assert resized_shape(width, height, imgsz) == expected


def test_a_png_with_transparency_is_shrunk_to_colour_as_ultralytics_reads_it(tmp_path):
    source, folder = tmp_path / "a.png", tmp_path / "copy"
    folder.mkdir()
    pixels = np.zeros((400, 600, 4), dtype=np.uint8)
    pixels[..., 0], pixels[..., 3] = 200, 10  # red, nearly transparent
    Image.fromarray(pixels, "RGBA").save(source)
    assert shrink_image(source, folder, 300) == ("a.png", True)
    with Image.open(folder / "a.png") as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (300, 200))
        assert image.getpixel((10, 10)) == (200, 0, 0)
