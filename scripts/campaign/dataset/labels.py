"""Parse one YOLO label file the way students really write them.

Every line ends up either as a box (possibly fixed, with the reason) or as a
rejection (with the reason). Nothing is dropped silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# A coordinate above this is taken as pixels, not a normalised 0..1 value
# (a normalised box that pokes slightly out of the image stays below it).
PIXEL_THRESHOLD = 1.5


@dataclass(frozen=True)
class Box:
    """A box in normalised corner form, with its global class id."""

    cls: int
    x0: float
    y0: float
    x1: float
    y1: float

    def yolo_line(self) -> str:
        w, h = self.x1 - self.x0, self.y1 - self.y0
        xc, yc = self.x0 + w / 2, self.y0 + h / 2
        return f"{self.cls} {xc:.6f} {yc:.6f} {w:.6f} {h:.6f}"


@dataclass
class ParsedLabels:
    boxes: list[Box] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # rejected lines by reason, for the log's count

    def reject(self, reason: str, message: str) -> None:
        self.rejections.append(message)
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def _utf16(data: bytes) -> str | None:
    """The UTF-16 a Windows editor writes ('Unicode' in Notepad), with or without its byte-order mark."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    # Without a mark: ASCII text in UTF-16 has a zero byte beside every character.
    if len(data) >= 4 and len(data) % 2 == 0:
        odd_zeros, even_zeros = data[1::2].count(0), data[0::2].count(0)
        half = len(data) // 2
        for zeros, encoding in ((odd_zeros, "utf-16-le"), (even_zeros, "utf-16-be")):
            if zeros >= 0.9 * half:
                try:
                    return data.decode(encoding)
                except UnicodeDecodeError:
                    return None
    return None


def decode_text(data: bytes) -> tuple[str, list[str]]:
    """Decode a text upload: UTF-8 with or without BOM, UTF-16, else Latin-1; report what was odd."""
    notes = []
    utf16 = _utf16(data)
    if utf16 is not None:
        text = utf16.removeprefix("\ufeff")
        notes.append("decoded from UTF-16")
    else:
        if data.startswith(b"\xef\xbb\xbf"):
            notes.append("byte-order mark removed")
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
            notes.append("decoded as Latin-1")
    if "\r" in text:
        notes.append("CRLF line endings normalised")
    return text, notes


def parse_labels(
    data: bytes,
    class_map: dict[int, int | None],
    local_names: dict[int, str],
    image_size: tuple[int, int],
    min_box_px: float,
) -> ParsedLabels:
    """Parse label bytes into global-class boxes.

    class_map maps the group's local class ids to global ids (None where the
    local class is not part of the campaign); local_names is only for messages.
    """
    width, height = image_size
    text, notes = decode_text(data)
    result = ParsedLabels(fixes=notes)
    seen: set[tuple] = set()
    blank = 0
    for number, raw_line in enumerate(text.splitlines(), start=1):
        fields = raw_line.split()
        if not fields:
            blank += 1
            continue
        if raw_line != raw_line.strip() or raw_line.strip() != " ".join(fields):
            note = "extra spaces or tabs normalised"
            if note not in result.fixes:
                result.fixes.append(note)
        where = f"line {number}"
        try:
            local = int(float(fields[0]))
            if local != float(fields[0]) or local < 0:
                raise ValueError
            values = [float(v) for v in fields[1:]]
        except (ValueError, OverflowError):
            result.reject("not numeric", f"{where}: not numeric: {raw_line.strip()!r}")
            continue
        if not all(math.isfinite(v) for v in values):
            result.reject("not a finite number", f"{where}: nan or infinity: {raw_line.strip()!r}")
            continue
        if len(values) == 4:
            xc, yc, w, h = values
            if w < 0 or h < 0:
                result.reject("negative width or height", f"{where}: negative width or height: {raw_line.strip()!r}")
                continue
            coords = [(xc - w / 2, yc - h / 2), (xc + w / 2, yc + h / 2)]
            kind = "box"
        elif len(values) >= 6 and len(values) % 2 == 0:
            coords = list(zip(values[0::2], values[1::2]))
            kind = "polygon"
        else:
            result.reject(
                "wrong number of fields",
                f"{where}: {len(fields)} fields; a box needs 5 (class xc yc w h), a polygon an odd number, at least 7",
            )
            continue
        if local not in class_map:
            result.reject(
                "class id unknown to its group",
                f"{where}: class id {local} is not among the group's classes {sorted(local_names)}",
            )
            continue
        cls = class_map[local]
        if cls is None:
            result.reject(
                "class mapped to null",
                f"{where}: class {local_names.get(local, local)!r} dropped (null in dataset.class_map)",
            )
            continue
        if max(abs(v) for v in values) > PIXEL_THRESHOLD:
            coords = [(x / width, y / height) for x, y in coords]
            note = "pixel coordinates normalised"
            if note not in result.fixes:
                result.fixes.append(note)
        xs, ys = [x for x, _ in coords], [y for _, y in coords]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        if kind == "polygon":
            result.fixes.append(f"{where}: polygon converted to its bounding box")
        if x1 <= 0 or y1 <= 0 or x0 >= 1 or y0 >= 1:
            result.reject("outside the image", f"{where}: the box lies entirely outside the image")
            continue
        cx0, cy0 = min(max(x0, 0.0), 1.0), min(max(y0, 0.0), 1.0)
        cx1, cy1 = min(max(x1, 0.0), 1.0), min(max(y1, 0.0), 1.0)
        if (cx1 - cx0) * width < min_box_px or (cy1 - cy0) * height < min_box_px:
            result.reject(
                f"narrower or shorter than min_box_px {min_box_px:g}",
                f"{where}: degenerate box ({(cx1 - cx0) * width:.1f} x {(cy1 - cy0) * height:.1f} px inside the image)",
            )
            continue
        if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
            result.fixes.append(f"{where}: box clipped to the image")
        box = Box(cls, cx0, cy0, cx1, cy1)
        key = box.yolo_line()
        if key in seen:
            result.fixes.append(f"{where}: duplicate box removed")
            continue
        seen.add(key)
        result.boxes.append(box)
    if blank:
        result.fixes.append(f"{blank} blank line(s) removed")
    return result
