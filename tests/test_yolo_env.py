"""Ultralytics runs offline with job-private settings, finds its plot font without a download, and shares
a dataset's label cache safely with other jobs."""

import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_ultralytics_finds_its_font_locally_and_uses_the_private_settings(tmp_path):
    # A fresh interpreter: Ultralytics reads its settings folder once, at import.
    code = (
        "from campaign.core.yolo_env import prepare_ultralytics\n"
        f"prepare_ultralytics({str(tmp_path)!r})\n"
        "from ultralytics.utils import SETTINGS, USER_CONFIG_DIR\n"
        "from ultralytics.utils.checks import check_font\n"
        "print(check_font('Arial.ttf'))\n"
        "print(SETTINGS.file)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    font, settings = result.stdout.strip().splitlines()[-2:]
    assert Path(font) == tmp_path / "Ultralytics" / "Arial.ttf"
    assert Path(settings).parent == tmp_path / "Ultralytics"


# Three jobs at once on one dataset folder: two read the test split, one the validation split.
CONCURRENT_JOBS = """
import collections, multiprocessing, sys
from campaign.core.yolo_env import prepare_ultralytics
prepare_ultralytics(sys.argv[1], tensorboard=False)
if sys.argv[4] == "ultralytics":  # Ultralytics' own writer, for comparison
    import ultralytics.data.dataset, ultralytics.data.utils
    ultralytics.data.dataset.save_dataset_cache_file = ultralytics.data.utils.save_dataset_cache_file
from ultralytics.data.dataset import YOLODataset
from ultralytics.data.utils import check_det_dataset

def job(split, together, outcomes):
    data = check_det_dataset(sys.argv[2])
    for _ in range(int(sys.argv[3])):
        together.wait()  # every job starts its dataset at the same moment
        try:
            YOLODataset(img_path=data[split], data=data, imgsz=32, augment=False)
            outcomes.put("ok")
        except Exception as error:
            outcomes.put(f"{type(error).__name__}: {error}")

forked = multiprocessing.get_context("fork")  # the jobs are defined in this -c script: forked, not imported
together, outcomes = forked.Barrier(3), forked.Queue()
jobs = [forked.Process(target=job, args=(s, together, outcomes)) for s in ("test", "test", "val")]
for each in jobs:
    each.start()
print(collections.Counter(outcomes.get() for _ in range(3 * int(sys.argv[3]))))
"""


def small_dataset(folder: Path, images: int = 30) -> Path:
    """Images in one folder and three split lists, as split_dataset writes them: one labels.cache for all."""
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for i in range(images):
        Image.new("RGB", (32, 32), (i * 8, 90, 160)).save(folder / "images" / f"{i}.jpg")
        (folder / "labels" / f"{i}.txt").write_text("0 0.5 0.5 0.4 0.4\n")
    for index, split in enumerate(("train", "val", "test")):
        chosen = range(index, images, 3)
        (folder / f"{split}.txt").write_text("".join(f"./images/{i}.jpg\n" for i in chosen))
    dataset = folder / "dataset.yaml"
    dataset.write_text(f"path: {folder}\ntrain: train.txt\nval: val.txt\ntest: test.txt\nnames:\n  0: ring\n")
    return dataset


def test_jobs_reading_splits_of_one_dataset_at_once_never_trip_over_its_label_cache(tmp_path):
    """Ultralytics rewrites the cache the splits share by deleting it first; a job deleting it after another
    crashed with FileNotFoundError (about 1 start in 100 here; "ultralytics" as the last argument shows it).
    Written whole and renamed: none."""
    dataset = small_dataset(tmp_path / "dataset")
    command = [sys.executable, "-c", CONCURRENT_JOBS, str(tmp_path / "settings"), str(dataset), "150", "campaign"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=600)
    assert result.stdout.strip().splitlines()[-1] == "Counter({'ok': 450})", result.stdout[-2000:]
