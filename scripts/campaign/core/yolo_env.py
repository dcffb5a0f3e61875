"""Make Ultralytics run offline, with settings private to one job, and safe beside other jobs.

Call `prepare_ultralytics()` before the first `import ultralytics`: the
package reads its settings folder and the offline switch at import time.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from campaign.core.io import atomic_write_bytes


def prepare_ultralytics(settings_dir: str | Path, tensorboard: bool = True) -> None:
    """Point Ultralytics at a job-private settings folder, forbid downloads, write its label caches whole.

    A private folder per job avoids concurrent jobs rewriting one
    settings.json, and keeps the user's own Ultralytics settings untouched.
    Ultralytics draws plot labels with Arial, which it would download; the
    DejaVu Sans font that matplotlib ships takes its place. Its label caches
    are written by `save_label_cache`.
    """
    settings_dir = Path(settings_dir).resolve()
    settings_dir.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_CONFIG_DIR"] = str(settings_dir)
    os.environ.setdefault("YOLO_VERBOSE", "True")

    import matplotlib

    dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    # Ultralytics keeps its settings and fonts in the "Ultralytics" sub-folder.
    fonts = settings_dir / "Ultralytics"
    fonts.mkdir(exist_ok=True)
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        target = fonts / name
        if not target.exists():
            shutil.copyfile(dejavu, target)

    from ultralytics.utils import SETTINGS

    SETTINGS.update(
        {
            "tensorboard": tensorboard,
            "sync": False,
            "datasets_dir": str(settings_dir / "datasets"),
            "weights_dir": str(settings_dir / "weights"),
            "runs_dir": str(settings_dir / "runs"),
        }
    )
    write_label_caches_whole()


def write_label_caches_whole() -> None:
    """Have Ultralytics write its label caches with `save_label_cache`; in every process that builds a dataset.

    Import Ultralytics only once its settings are prepared (prepare_ultralytics, or a parent job's environment).
    """
    import ultralytics.data.dataset

    # The dataset module calls the name it imported: replaced there.
    ultralytics.data.dataset.save_dataset_cache_file = save_label_cache


def save_label_cache(prefix: str, path: Path, cache: dict, version: str) -> None:
    """Ultralytics' label cache (labels.cache beside a label folder), written whole and renamed into place.

    The splits of a dataset share one label folder, so one cache file, which
    Ultralytics rewrites whenever a job reads another split than the last
    one did: it deletes the file, then writes it in place. Two jobs doing so
    at once (two evaluations, an evaluation beside a training) crash one of
    them (FileNotFoundError on the delete) or hand it half a file. Written
    atomically, every reader finds a whole cache, old or new, and checks its
    hash as before; a job that finds another split's cache scans the labels.
    """
    cache["version"] = version
    buffer = io.BytesIO()
    np.save(buffer, cache)
    logger = logging.getLogger("ultralytics")  # Ultralytics' own logger: the job's log, as its own message went
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as error:  # a read-only dataset folder: go on without a cache, as Ultralytics does
        logger.warning(f"{prefix}Cache not saved to {path}: {error}")
        return
    logger.info(f"{prefix}New cache created: {path}")
