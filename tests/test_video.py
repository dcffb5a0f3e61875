"""The contact sheet's frames: evenly spread over a video of any length, in bounded memory."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from campaign.core.configurations import ConfigError
from campaign.evaluation.video import FrameSampler, contact_sheet, detect_source_names


def frames_sampled(total: int, count: int = 12) -> tuple[list[int], int, int]:
    sampler, most = FrameSampler(count), 0
    for index in range(total):
        sampler.add(np.full((4, 6, 3), index % 256, dtype=np.uint8))
        most = max(most, len(sampler.kept))
    return [index for index, _ in sampler.picks()], most, sampler.stride


def test_a_long_stream_keeps_at_most_twice_the_sheet_and_spreads_the_picks():
    picks, most, stride = frames_sampled(3600)  # two minutes at 30 fps
    assert most < 24 and stride < 3600 / 12
    assert len(picks) == 12 and picks[0] == 0 and picks[-1] == 3599
    evenly = [slot * 3599 / 11 for slot in range(12)]
    assert max(abs(pick - target) for pick, target in zip(picks, evenly)) < stride, picks


def test_a_short_stream_shows_every_frame():
    picks, _, _ = frames_sampled(5)
    assert picks == [0, 1, 2, 3, 4]


def test_the_sheet_labels_each_frame_with_its_number():
    sampler = FrameSampler(4)
    for index in range(10):
        sampler.add(np.full((20, 80, 3), index * 20, dtype=np.uint8))  # wide enough for "frame 9"
    picks = sampler.picks()
    sheet = contact_sheet(picks, columns=2)
    assert sheet.size == (160, 2 * (20 + 14))

    def label(text: str) -> bytes:  # a label strip as the sheet draws it
        strip = Image.new("RGB", (80, 14), "white")
        ImageDraw.Draw(strip).text((2, 1), text, fill="black")
        return strip.tobytes()

    for slot, (index, frame) in enumerate(picks):
        x, y = (slot % 2) * 80, (slot // 2) * 34
        assert sheet.crop((x, y, x + 80, y + 14)).tobytes() == label(f"frame {index}"), slot
        assert label(f"frame {index}") != label(f"frame {index + 1}")  # the strip tells the numbers apart
        assert np.array_equal(np.asarray(sheet.crop((x, y + 14, x + 80, y + 34))), frame)  # its frame below


def test_two_sources_with_one_name_are_an_error_naming_both():
    names = detect_source_names(["videos/lab day.v2.mp4", "frames/café"])
    assert names == {"lab day.v2": "videos/lab day.v2.mp4", "café": "frames/café"}
    with pytest.raises(ConfigError, match=r"detect.sources\[1\]: 'b/table.avi' and 'a/table.mp4' would both write"):
        detect_source_names(["a/table.mp4", "b/table.avi"])


@pytest.mark.slow  # half a minute of 1080p written, then every frame detected, drawn and encoded
def test_thirty_seconds_of_1080p_stream_through_detection_into_a_whole_video(tmp_path):
    import cv2

    from campaign.core.yolo_env import prepare_ultralytics
    from campaign.dataset.synthetic import write_table_video

    prepare_ultralytics(tmp_path / "ultralytics", tensorboard=False)
    from ultralytics import YOLO

    from campaign.evaluation.video import annotate_video

    source = tmp_path / "journée au labo.v2.mp4"  # a name as a class writes it
    write_table_video(source, frames=900, size=(1920, 1080), fps=30)
    weights = tmp_path / "yolov8n.pt"
    YOLO("yolov8n.yaml").save(str(weights))
    out = tmp_path / "annotated" / "journée au labo.v2.mp4"
    count, picks = annotate_video(weights, source, out, imgsz=64, device="cpu", conf=0.25)
    assert count == 900
    assert [index for index, _ in picks][:: len(picks) - 1] == [0, 899] and len(picks) == 12
    assert {frame.shape for _, frame in picks} == {(1080, 1920, 3)}
    written = cv2.VideoCapture(str(out))
    try:
        size = (written.get(cv2.CAP_PROP_FRAME_WIDTH), written.get(cv2.CAP_PROP_FRAME_HEIGHT))
        frames, fps = written.get(cv2.CAP_PROP_FRAME_COUNT), written.get(cv2.CAP_PROP_FPS)
    finally:
        written.release()
    assert (size, frames, fps) == ((1920, 1080), 900, 30)
