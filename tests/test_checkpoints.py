"""Pretrained checkpoints: fetched once with their SHA-256, checked before any job, legacy YOLOv5 recognised."""

import functools
import http.server
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from campaign.core.configurations import ConfigError
from campaign.training.checkpoints import checkpoint_format, official_name, read_checksums, verify_checkpoints

ROOT = Path(__file__).resolve().parents[1]


def legacy_checkpoint(path: Path) -> None:
    """A checkpoint as the original YOLOv5 repository pickles it: its model class lives in `models.yolo`."""
    package = path.parent / "yolov5_repository" / "models"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "yolo.py").write_text("import torch\nclass DetectionModel(torch.nn.Module):\n    pass\n")
    script = (
        "import sys, torch\nfrom models.yolo import DetectionModel\n"
        "torch.save({'epoch': -1, 'model': DetectionModel()}, sys.argv[1])\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], cwd=package.parent, check=True)


def ultralytics_checkpoint(path: Path) -> None:
    from ultralytics.nn.tasks import DetectionModel

    torch.save({"epoch": -1, "model": DetectionModel("yolov8n.yaml", verbose=False)}, path)


def test_checkpoint_formats_are_told_apart_without_loading_them(tmp_path):
    legacy_checkpoint(tmp_path / "yolov5m.pt")
    ultralytics_checkpoint(tmp_path / "yolov8n.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "plain.pt")
    assert checkpoint_format(tmp_path / "yolov5m.pt") == "yolov5-legacy"
    assert checkpoint_format(tmp_path / "yolov8n.pt") == "ultralytics"
    assert checkpoint_format(tmp_path / "plain.pt") == "unknown"
    assert [official_name(m) for m in ("yolov5m", "yolov8s", "yolo11n", "yolo26x")] == [
        "yolov5mu.pt",
        "yolov8s.pt",
        "yolo11n.pt",
        "yolo26x.pt",
    ]


def test_a_legacy_yolov5_checkpoint_is_refused_with_the_file_to_use(tmp_path):
    legacy_checkpoint(tmp_path / "yolov5m.pt")
    with pytest.raises(ConfigError, match=r"original YOLOv5 repository .* yolov5mu\.pt"):
        verify_checkpoints({"yolov5m": str(tmp_path / "yolov5m.pt")}, tmp_path / "SHA256SUMS")


def fetch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "campaign", "fetch-weights", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True)


@pytest.fixture
def release(tmp_path):
    """Official-looking checkpoints served over HTTP on loopback, as the Ultralytics release serves them."""
    served = tmp_path / "release"
    served.mkdir()
    ultralytics_checkpoint(served / "yolov8n.pt")
    (served / "yolov5nu.pt").write_bytes((served / "yolov8n.pt").read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetched_checkpoints_are_recorded_and_a_tampered_one_is_refused(tmp_path, release):
    work = tmp_path / "campaign"
    work.mkdir()
    (work / "c.yaml").write_text("weights: {yolov8n: weights/yolov8n.pt, yolov5n: weights/yolov5nu.pt}\n")
    result = fetch("--configfile", "c.yaml", "--base-url", release, cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    checksums = read_checksums(work / "weights/SHA256SUMS")
    assert set(checksums) == {"yolov8n.pt", "yolov5nu.pt"}
    # sha256sum itself agrees with the file the workflow reads.
    subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=work / "weights", check=True)
    weights = {"yolov8n": str(work / "weights/yolov8n.pt")}
    verify_checkpoints(weights, work / "weights/SHA256SUMS")

    tampered = bytearray((work / "weights/yolov8n.pt").read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    (work / "weights/yolov8n.pt").write_bytes(bytes(tampered))
    with pytest.raises(ConfigError, match=r"weights\.yolov8n: .* does not match the SHA-256"):
        verify_checkpoints(weights, work / "weights/SHA256SUMS")


def test_offline_the_fetch_command_says_which_file_to_copy_where(tmp_path):
    (tmp_path / "c.yaml").write_text("weights: {yolov5m: weights/yolov5mu.pt}\n")
    result = fetch("--configfile", "c.yaml", "--base-url", "http://127.0.0.1:9/nowhere", cwd=tmp_path)
    assert result.returncode == 1
    assert "http://127.0.0.1:9/nowhere/yolov5mu.pt" in result.stdout
    assert "-> weights/yolov5mu.pt" in result.stdout and "--record" in result.stdout
    assert not (tmp_path / "weights/yolov5mu.pt").exists() and not (tmp_path / "weights/yolov5mu.pt.part").exists()


def test_an_unrecorded_checkpoint_is_refused_before_any_job(tmp_path):
    ultralytics_checkpoint(tmp_path / "yolov8n.pt")
    with pytest.raises(ConfigError, match=r"does not exist, so the configured checkpoints cannot be checked"):
        verify_checkpoints({"yolov8n": str(tmp_path / "yolov8n.pt")}, tmp_path / "SHA256SUMS")
    (tmp_path / "SHA256SUMS").write_text("")
    with pytest.raises(ConfigError, match=r"not listed in .*--record"):
        verify_checkpoints({"yolov8n": str(tmp_path / "yolov8n.pt")}, tmp_path / "SHA256SUMS")
