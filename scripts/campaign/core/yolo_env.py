"""Make Ultralytics run offline, with settings private to one job.

Call `prepare_ultralytics()` before the first `import ultralytics`: the
package reads its settings folder and the offline switch at import time.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def prepare_ultralytics(settings_dir: str | Path, tensorboard: bool = True) -> None:
    """Point Ultralytics at a job-private settings folder and forbid downloads.

    A private folder per job avoids concurrent jobs rewriting one
    settings.json, and keeps the user's own Ultralytics settings untouched.
    Ultralytics draws plot labels with Arial, which it would download; the
    DejaVu Sans font that matplotlib ships takes its place.
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
