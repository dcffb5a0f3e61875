"""Write the embedded demo: a classroom upload in four groups' own messy ways.

Each group uses another folder layout, its own class ids, and the habits real
uploads have (CRLF, stray spaces, Windows paths, pixel coordinates, a polygon,
a corrupt image, a duplicate upload). The cleaning stage must undo all of it;
the demo therefore exercises the same code paths as a real class upload.

Run `campaign demo-upload demo/raw` to regenerate it.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image

from campaign.dataset.synthetic import DEMO_OBJECTS, Annotation, draw_scene

GLOBAL_CLASSES = ["glasses", "lentils", "ring"]
IMAGE_SIZE = (128, 128)


def _label_lines(annotations: list[Annotation], names: list[str]) -> list[str]:
    return [f"{names.index(a.name)} {a.xc:.6f} {a.yc:.6f} {a.w:.6f} {a.h:.6f}" for a in annotations]


def _write(path: Path, lines: list[str], newline: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(line + newline for line in lines).encode("utf-8"))


def _scene(seed: int) -> tuple[Image.Image, list[Annotation]]:
    return draw_scene(seed, DEMO_OBJECTS, size=IMAGE_SIZE)


def group_alpha(root: Path, seeds: range) -> None:
    """images/ + labels/ with split lists written three different ways."""
    names = ["ring", "glasses", "lentils"]  # the group's own order
    _write(root / "classes.txt", names)
    entries = []
    for seed in seeds:
        image, annotations = _scene(seed)
        stem = f"IMG_{seed:04d}"
        image.save(_mk(root / "images" / f"{stem}.jpg"), quality=88)
        _write(root / "labels" / f"{stem}.txt", _label_lines(annotations, names), "\r\n")
        entries.append(stem)
    third = len(entries) // 10
    val, test, train = entries[:third], entries[third : 2 * third], entries[2 * third :]
    # Windows absolute paths from the student's laptop, CRLF, a BOM.
    _write(
        root / "train.txt",
        ["\ufeff" + f"C:\\Users\\eva\\project\\images\\{train[0]}.jpg"]
        + [f"C:\\Users\\eva\\project\\images\\{s}.jpg" for s in train[1:]],
        "\r\n",
    )
    # ./relative paths, a blank line, trailing spaces and a duplicate.
    _write(root / "val.txt", [f"./images/{s}.jpg  " for s in val] + ["", f"./images/{val[0]}.jpg"])
    # Bare names without extension, and one entry for a file that was never uploaded.
    _write(root / "test.txt", list(test) + ["IMG_9999"])


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def group_bravo(root: Path, seeds: range) -> None:
    """Roboflow export: train/valid/test with data.yaml and .png images."""
    names = ["lentils", "ring", "glasses"]
    (root).mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(
        f"train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\nnc: {len(names)}\nnames: {names}\n"
    )
    for index, seed in enumerate(seeds):
        split = ("valid", "test", "train", "train", "train", "train", "train", "train", "train", "train")[index % 10]
        image, annotations = _scene(seed)
        stem = f"frame_{seed:04d}_jpg.rf.{seed * 7919 % 100000:05d}"
        suffix = ".png" if index % 15 == 0 else ".jpg"  # mostly JPEG, as exported
        image.save(_mk(root / split / "images" / f"{stem}{suffix}"), quality=88)
        lines = _label_lines(annotations, names)
        if index == 3 and lines:
            # A polygon row (segmentation export) instead of a box.
            cls, xc, yc, w, h = lines[0].split()
            xc, yc, w, h = map(float, (xc, yc, w, h))
            x0, y0, x1, y1 = xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2
            lines[0] = f"{cls} {x0:.6f} {y0:.6f} {x1:.6f} {y0:.6f} {x1:.6f} {y1:.6f} {x0:.6f} {y1:.6f}"
        _write(root / split / "labels" / f"{stem}.txt", lines)


def group_charlie(root: Path, seeds: range) -> None:
    """LabelImg: a flat folder of image + txt pairs and classes.txt, hand-edited."""
    names = ["glasses", "ring", "lentils"]
    _write(root / "classes.txt", names + [""], "\r\n")
    width, height = IMAGE_SIZE
    for index, seed in enumerate(seeds):
        image, annotations = _scene(seed)
        stem = f"photo {seed:03d} café" if index % 5 == 0 else f"photo_{seed:03d}"
        suffix = ".JPG" if index % 4 == 0 else ".jpeg"
        image.save(_mk(root / f"{stem}{suffix}"), quality=90)
        lines = []
        for a in annotations:
            cls = names.index(a.name)
            if index % 6 == 0:  # pixel coordinates instead of normalised ones
                lines.append(f"{cls} {a.xc * width:.1f} {a.yc * height:.1f} {a.w * width:.1f} {a.h * height:.1f}")
            else:  # stray spaces and tabs
                lines.append(f" {cls}\t{a.xc:.5f}  {a.yc:.5f} {a.w:.5f} {a.h:.5f} ")
        if index == 2 and lines:
            lines.append(lines[0])  # a duplicate box
            lines.append("1 0.5 0.5")  # a line with too few fields
        if index == 7:
            lines.append("2 0.99 0.5 0.06 0.2")  # slightly outside the image: clipped
            lines.append("2 0.5 0.5 0.0 0.1")  # degenerate: dropped
        _write(root / f"{stem}.txt", lines, "\r\n" if index % 2 else "\n")
    # An orphan label and a truncated image.
    _write(root / "photo_lost.txt", ["0 0.5 0.5 0.2 0.2"])
    good = (root / f"photo_{seeds[1]:03d}.jpeg").read_bytes()
    (root / "photo_broken.jpeg").write_bytes(good[: len(good) // 3])


def group_delta(root: Path, seeds: range, duplicate_of: Path) -> None:
    """Nested sessions; numeric class ids explained only by config.yaml's class_map."""
    names = ["lentils", "glasses", "ring"]  # see dataset.class_map.delta in config.yaml
    for index, seed in enumerate(seeds):
        session = f"session_{index % 3 + 1}/{'kitchen' if index % 2 else 'desk'}"
        image, annotations = _scene(seed)
        stem = f"{index:03d}"
        image.save(_mk(root / session / f"{stem}.jpg"), quality=85)
        _write(root / session / f"{stem}.txt", _label_lines(annotations, names))
    # The same photo uploaded by two groups.
    copy = root / "session_1" / "desk" / "dup_from_alpha.jpg"
    shutil.copyfile(duplicate_of, copy)


def write_demo_upload(root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    group_alpha(root / "alpha", range(0, 90))
    group_bravo(root / "bravo", range(1000, 1090))
    group_charlie(root / "charlie", range(2000, 2080))
    group_delta(root / "delta", range(3000, 3080), root / "alpha" / "images" / "IMG_0042.jpg")
    alpha_label = root / "alpha" / "labels" / "IMG_0042.txt"
    names = ["ring", "glasses", "lentils"]
    delta_names = ["lentils", "glasses", "ring"]
    relabelled = []
    for line in alpha_label.read_text().splitlines():
        cls, *rest = line.split()
        relabelled.append(" ".join([str(delta_names.index(names[int(cls)])), *rest]))
    _write(root / "delta" / "session_1" / "desk" / "dup_from_alpha.txt", relabelled)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path, help="folder to (re)create, e.g. demo/raw")
    write_demo_upload(parser.parse_args(argv).root)
    return 0
