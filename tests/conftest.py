import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

COCO128 = ROOT.parent / "shared" / "datasets" / "coco128"


@pytest.fixture
def coco128() -> Path:
    """The real third-party data; its absence fails in CI and skips elsewhere."""
    if not (COCO128 / "data.yaml").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"coco128 is missing at {COCO128}; CI must have ../shared/datasets/coco128")
        pytest.skip(f"coco128 not found at {COCO128} (read its SOURCE.md to provide it)")
    return COCO128


@pytest.fixture(scope="session")
def scratch_campaign(tmp_path_factory) -> Path:
    """SCRATCH's folder: yolov8n trained from random weights by the workflow and validated (about two minutes)."""
    from tiny_campaign import learn_checkpoint

    workdir = tmp_path_factory.mktemp("scratch")
    learn_checkpoint(workdir)
    return workdir


@pytest.fixture(scope="session")
def learned_weights(scratch_campaign) -> Path:
    """The folder with SCRATCH's trained checkpoint, which detects the demo's objects, and its SHA256SUMS."""
    return scratch_campaign / "weights"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a root user on a machine without network or display.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must open the report in Chromium: install Debian's chromium")
        pytest.skip("chromium not found: install Debian's chromium to open the report")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
