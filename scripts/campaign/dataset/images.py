"""One uploaded image checked, made upright and written: what the cleaning stage's workers do.

An image is read once: its bytes are hashed, decoded in full (a truncated or
corrupt file fails here, not when training starts), measured, its EXIF
orientation applied, and its labels parsed against its real size. Formats
training does not read (HEIC) are written as JPEG; a JPEG followed by other
data (a motion photo's video) is cut at its end.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from campaign.dataset.annotation_formats import local_ids
from campaign.dataset.labels import Box, parse_labels
from campaign.dataset.uploads import UploadedImage

EXIF_ORIENTATION = 0x0112
# What Ultralytics' own scan (ultralytics.data.utils.check_image) accepts:
# anything else would be dropped as corrupt when training starts.
TRAINABLE_FORMATS = {"JPEG", "MPO", "PNG", "BMP", "WEBP", "TIFF"}
# Phones' own format: decoded here (pillow-heif) and written to the cleaned dataset as JPEG.
CONVERTED_FORMATS = {"HEIF"}
MIN_SIDE_PX = 10

pillow_heif.register_heif_opener()


@dataclass
class InspectedImage:
    upload: UploadedImage
    group: str
    sha256: str = ""
    width: int = 0
    height: int = 0
    rotated: bool = False
    size: int = 0  # bytes uploaded
    # Where a JPEG followed by other data (a motion photo's video) ends; 0 where that end was not found.
    jpeg_end: int | None = None
    ahash: str = ""
    error: str = ""  # the image itself cannot be used
    excluded: str = ""  # the image is fine but its labels are not: not trained on, rather than as background
    convert: bool = False  # decoded from a format training does not read, written as JPEG
    boxes: list[Box] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # rejected label lines by reason
    image_name: str = ""  # written as images/<image_name> and labels/<label_name>
    label_name: str = ""
    written_sha256: str = ""  # of the image file written (differs from sha256 once rotated or trimmed)
    label_sha256: str = ""


def average_hash(image: Image.Image, size: int = 16) -> str:
    """256-bit average hash: which cells of a 16x16 grey thumbnail are above their mean.

    It survives re-encoding and resizing (on coco128, shrinking to 3/4 and
    saving at JPEG quality 40 flips at most 7 bits, while distinct photos
    differ by 21 or more), not cropping or edits.
    """
    grey = image if image.mode == "L" else image.convert("L")
    thumbnail = np.asarray(grey.resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    return np.packbits(thumbnail > thumbnail.mean()).tobytes().hex()


@dataclass(frozen=True)
class ImageJob:
    """One image for a cleaning worker: where it came from, how its classes map, and the name it gets."""

    upload: UploadedImage
    group: str
    mapping: dict[int, int | None]
    local_names: dict[int, str]
    min_box_px: float
    out: Path
    stem: str
    background_ok: bool = False  # the group is in dataset.background_groups: an image without labels is background
    max_pixels: int = 120_000_000


def clean_image(job: ImageJob) -> InspectedImage:
    """Verify one image fully, parse its labels against its real size, and write the cleaned pair.

    The upload is read once: the same bytes are hashed, decoded and, unless
    the pixels must be turned upright, written out as they are.
    """
    data = job.upload.path.read_bytes()
    result = inspect_image(
        job.upload, data, job.group, job.mapping, job.local_names, job.min_box_px, job.background_ok, job.max_pixels
    )
    if result.error or result.excluded:
        return result
    result.image_name = job.stem + (".jpg" if result.convert else output_suffix(job.upload.path))
    result.label_name = job.stem + ".txt"
    label_text = "".join(box.yolo_line() + "\n" for box in result.boxes).encode()
    result.label_sha256 = hashlib.sha256(label_text).hexdigest()
    if result.convert:
        data = _as_jpeg(data)
    elif result.rotated:
        data = _upright(data)
    elif result.jpeg_end is not None:
        # Cut what follows the JPEG: Ultralytics would otherwise re-encode
        # the image in the dataset behind the manifest's back.
        data = data[: result.jpeg_end] if result.jpeg_end else _upright(data)
    result.written_sha256 = hashlib.sha256(data).hexdigest()
    (job.out / "images" / result.image_name).write_bytes(data)
    (job.out / "labels" / result.label_name).write_bytes(label_text)
    return result


def inspect_image(
    upload: UploadedImage,
    data: bytes,
    group: str,
    mapping,
    local_names,
    min_box_px: float,
    background_ok: bool = False,
    max_pixels: int = 120_000_000,
) -> InspectedImage:
    """Verify one image (its bytes as uploaded) fully and parse its labels against its real size.

    An image whose label file exists but yields no usable box, or that has
    no label file in a group that labelled its images, is excluded rather
    than trained on as a background image: its objects would be learnt as
    background. An empty label file is a background image on purpose.
    """
    result = InspectedImage(upload=upload, group=group)
    result.sha256, result.size = hashlib.sha256(data).hexdigest(), len(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the pixel limit below says it better
            image = Image.open(io.BytesIO(data))
        with image:
            width, height = image.size
            if width * height > max_pixels:
                result.error = (
                    f"{width}x{height} pixels ({width * height / 1e6:.0f} megapixels), above dataset.max_pixels "
                    f"({max_pixels / 1e6:g} megapixels): shrink the photo, or raise dataset.max_pixels"
                )
                return result
            result.convert = image.format in CONVERTED_FORMATS
            if image.format not in TRAINABLE_FORMATS and not result.convert:
                result.error = f"{image.format} data, which YOLO training does not read: convert it to JPEG or PNG"
                return result
            if min(width, height) < MIN_SIDE_PX:
                result.error = f"{width}x{height} pixels: training needs at least {MIN_SIDE_PX} each way"
                return result
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
            # A JPEG is decoded at 1/8 scale: every block of the file is still
            # read (a truncated or corrupt file fails in load()), but without
            # the full-size inverse DCT, which the hash does not need.
            image.draft("L", (max(1, width // 8), max(1, height // 8)))
            image.load()
            result.rotated = orientation not in (0, 1)
            if orientation in (5, 6, 7, 8):  # these orientations swap width and height
                width, height = height, width
            result.width, result.height = width, height
            result.ahash = average_hash(ImageOps.exif_transpose(image) if result.rotated else image)
            if image.format == "JPEG" and not data.endswith(b"\xff\xd9"):
                result.jpeg_end = jpeg_end(data) or 0  # 0: its end was not found, re-encode it
    except Image.DecompressionBombError:
        result.error = f"above dataset.max_pixels ({max_pixels / 1e6:g} megapixels): shrink the photo"
        return result
    # Once Ultralytics is imported in the process, its patched Image.open answers a file Pillow cannot identify
    # by importing pi_heif, which is not installed: that ImportError means the same.
    except (UnidentifiedImageError, ImportError):
        result.error = "unreadable image: not a picture Pillow can decode (damaged, empty, or another kind of file)"
        return result
    except Exception as error:  # PIL raises many types for broken files
        result.error = f"unreadable image: {without_object_names(str(error))}"
        return result
    if upload.label_problem:
        result.excluded = f"not trained on: {upload.label_problem}"
    elif upload.label is not None:
        converted = upload.converted
        if converted is not None:  # another tool's boxes, written as YOLO lines and checked like them
            label_bytes = converted.yolo_text(local_ids(local_names), (result.width, result.height))
        else:
            label_bytes = upload.label.read_bytes()
        parsed = parse_labels(label_bytes, mapping, local_names, (result.width, result.height), min_box_px)
        result.boxes, result.fixes, result.rejections = parsed.boxes, parsed.fixes, parsed.rejections
        notes = [upload.label_note] if upload.label_note else []
        if converted is not None:
            entry = f" (its entry for {converted.image_name})" if converted.image_name else ""
            notes.append(f"{len(converted.boxes)} boxes converted from {converted.format}{entry}")
        result.fixes = notes + result.fixes
        result.dropped = parsed.dropped
        if result.rejections and not result.boxes:
            result.excluded = "not trained on: no box of its label file could be used (see the label's row)"
    elif not background_ok:
        result.excluded = (
            "not trained on: no label file (an empty label file marks a background image; "
            f"or add {group} to dataset.background_groups)"
        )
    return result


def jpeg_end(data: bytes) -> int | None:
    """Where a JPEG's own data ends, just after its end-of-image marker; None if it has none.

    Walks the marker segments (skipping their payloads, such as an embedded
    thumbnail with an end marker of its own) and each scan's entropy-coded
    data, in which 0xFF is followed only by 0x00 (a stuffed byte), a restart
    marker or fill bytes.
    """
    position, size = 2, len(data)  # after the start-of-image marker
    while position + 1 < size:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
        elif marker == 0xD9:
            return position + 2
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a payload
            position += 2
        else:
            position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
            if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
                while True:
                    position = data.find(b"\xff", position)
                    if position < 0 or position + 1 >= size:
                        return None
                    following = data[position + 1]
                    if following == 0x00 or 0xD0 <= following <= 0xD7:
                        position += 2
                    elif following == 0xFF:
                        position += 1
                    else:
                        break
    return None


def output_suffix(source: Path) -> str:
    suffix = source.suffix.lower()
    return ".jpg" if suffix == ".jpeg" else suffix


def _as_jpeg(data: bytes) -> bytes:
    """A photo in a format training does not read (HEIC), upright, as a JPEG."""
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
        buffer = io.BytesIO()
        upright.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _upright(data: bytes) -> bytes:
    """The image re-encoded in its own format with its EXIF orientation applied to the pixels."""
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image)
        buffer = io.BytesIO()
        upright.save(buffer, format=image.format, quality=95)
    return buffer.getvalue()


def without_object_names(message: str) -> str:
    """A library's message with Python object names ('<_io.BytesIO object at 0x7f...>') said as 'the file'."""
    return re.sub(r"<[\w.]+ object at 0x[0-9a-fA-F]+>", "the file", message)
