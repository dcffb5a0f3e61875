"""Walk an upload folder as it is on disk: the files worth reading, and what is skipped or stops the plan, with why.

Operating-system metadata (macOS resource forks, Finder and Explorer caches)
is never part of an upload; a file name that is not UTF-8 cannot go through
the workflow; a link is followed only where it stays inside the upload; FIFOs,
sockets and devices are never read. What the files are (images, labels,
class lists) is for uploads.py to read off them.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from pathlib import Path

# Phones write HEIC/HEIF (cleaning converts them to JPEG); Ultralytics reads the rest as they are.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".heic", ".heif"}
# What operating systems and archivers leave beside the files: never a group, an image or a label.
METADATA_FOLDERS = {"__MACOSX", ".Spotlight-V100", ".Trashes", ".fseventsd", ".AppleDouble", "$RECYCLE.BIN"}
METADATA_FILES = {".DS_Store", "Thumbs.db", "ehthumbs.db", "desktop.ini", "Icon\r"}


def special_kind(mode: int) -> str | None:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device")):
        if test(mode):
            return kind
    return "a device" if stat.S_ISBLK(mode) else None


def files_under(root: Path, upload: Path) -> tuple[list[Path], list[tuple[Path, str, str]], list[str]]:
    """Every file below root, in path order; the entries that are never read, with why; what stops the plan.

    Links are followed only where they lead to a file inside the upload
    folder (`upload`, already resolved): a group's link must not pull a file of
    the server into the dataset. Linked folders are not entered. FIFOs,
    sockets and devices are skipped (reading one could block or never end).
    One directory scan per folder (its entries know their type), where a
    stat per file would make discovery the slowest serial step of the cleaning.
    """
    found: list[str] = []
    skipped: list[tuple[Path, str, str]] = []
    problems: list[str] = []
    folders = [str(root)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                problem = unusable_name(entry.path)
                if problem:
                    problems.append(problem)
                elif is_metadata(entry.name):
                    skipped.append((Path(entry.path), "ignored", "operating-system metadata, not part of the upload"))
                elif entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                elif entry.is_symlink():
                    target = resolved_link(entry.path)
                    if target is None:
                        problems.append(f"{entry.path}: a link that leads back to itself: remove the link")
                    elif not target.is_relative_to(upload):
                        skipped.append((Path(entry.path), "rejected", f"link to {target}, outside the upload folder"))
                    elif not target.exists():
                        skipped.append((Path(entry.path), "rejected", f"broken link to {target}"))
                    elif target.is_file():
                        found.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    found.append(entry.path)
                else:
                    kind = special_kind(entry.stat(follow_symlinks=False).st_mode) or "not a regular file"
                    skipped.append((Path(entry.path), "skipped", f"{kind}, never read"))
    # Ordered as paths are (part by part), not as strings: "a/b" before "a-c".
    files = [Path(path) for path in sorted(found, key=lambda path: path.split(os.sep))]
    return files, sorted(skipped), problems


def is_metadata(name: str) -> bool:
    """Files and folders an operating system or archiver adds: macOS resource forks, Finder and Explorer caches."""
    return name in METADATA_FOLDERS or name in METADATA_FILES or name.startswith("._")


def unusable_name(path: str) -> str:
    """Why a file name cannot go through the workflow ('' where it can): it must be UTF-8.

    The path is shown with its undecodable bytes escaped (`caf\\xe9.jpg`).
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        escaped = ascii(os.fsencode(path))[2:-1]
        return f"{escaped}: the file name is not UTF-8 text: rename it (letters, digits, spaces and accents are fine)"
    return ""


def resolved_link(path: str) -> Path | None:
    """Where a link leads, or None for a loop of links."""
    try:
        return Path(path).resolve(strict=False)
    except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError for a loop, later ones OSError
        return None


def loose_entries(raw: Path) -> list[str]:
    """What stops the plan at the top of the upload folder: files outside any group folder, bad names, link loops."""
    problems, loose = [], []
    for entry in sorted(raw.iterdir()):
        problem = unusable_name(str(entry))
        if problem:
            problems.append(problem)
        elif is_metadata(entry.name):
            continue
        elif entry.is_symlink() and resolved_link(str(entry)) is None:
            problems.append(f"{entry}: a link that leads back to itself: remove the link")
        elif not entry.is_dir():
            loose.append(entry.name)
    if loose:
        shown_names = ", ".join(loose[:10]) + (f" and {len(loose) - 10} more" if len(loose) > 10 else "")
        problems.append(
            f"{len(loose)} file(s) directly in {raw}, outside any group folder ({shown_names}): "
            "put them in a group folder (one sub-folder per group), or remove them"
        )
    return problems


def safe_stem(text: str) -> str:
    """An ASCII file-name stem that keeps the original readable."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text).strip("._") or "image"
