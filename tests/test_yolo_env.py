"""Ultralytics runs offline with job-private settings, and finds its plot font without a download."""

import subprocess
import sys
from pathlib import Path

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
