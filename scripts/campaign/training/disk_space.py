"""A training on a full disk: say so, with the space it needs, and do not retry while it is still full.

A full disk fails a training in ways that do not always say so (PyTorch's
checkpoint writer reports "unexpected pos ..."), and once the disk is full
nothing can be written, the attempt's own record included. Each attempt
therefore sets a little space aside (`<run>.reserve`) while it runs and
frees it to record how it ended.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESERVE_BYTES = 1 << 20  # the attempt's record and its last log lines
PLOTS_MB = 20  # Ultralytics' end-of-training plots and the validation's


class NoSpaceError(OSError):
    """The training's disk is full; the message says how much it needs."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror


@contextmanager
def space_reserved(path: Path) -> Iterator[None]:
    """Hold RESERVE_BYTES of real disk blocks in `path` while the block runs."""
    try:
        with open(path, "wb") as stream:
            stream.write(bytes(RESERVE_BYTES))
            stream.flush()
            os.fsync(stream.fileno())
    except OSError as error:
        path.unlink(missing_ok=True)
        if error.errno == errno.ENOSPC:
            raise NoSpaceError(f"no space left on the disk of {path.parent} to start a training attempt") from error
        raise
    try:
        yield
    finally:
        free_reserve(path)


def free_reserve(path: Path) -> None:
    path.unlink(missing_ok=True)


def free_mb(folder: Path) -> float:
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free / 2**20


def checkpoint_mb(run_dir: Path) -> float:
    """The size of one of the run's checkpoints: of those on disk, else estimated from its network (0: unknown)."""
    sizes = [path.stat().st_size for path in (run_dir / "weights").glob("*.pt") if path.is_file()]
    return max(sizes, default=0) / 2**20 or _estimated_checkpoint_mb(run_dir)


def _estimated_checkpoint_mb(run_dir: Path) -> float:
    """A checkpoint of a running training: EMA weights and optimizer state in fp16, 4 bytes a parameter."""
    try:
        import yaml
        from ultralytics import YOLO

        model = yaml.safe_load((run_dir / "args.yaml").read_text())["model"]
        parameters = sum(tensor.numel() for tensor in YOLO(Path(model).with_suffix(".yaml").name).model.parameters())
    except Exception:  # no args.yaml yet, or no Ultralytics here: unknown
        return 0.0
    return 4 * parameters / 2**20


def ran_out_of_space(error: BaseException, run_dir: Path) -> bool:
    """Whether a failure came from a full disk: it says so, or it failed writing with less free than a checkpoint."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return free_mb(run_dir) < max(checkpoint_mb(run_dir), 1.0)


def space_needed(run_dir: Path) -> dict[str, Any]:
    """What the run needs to go on (two checkpoints rewritten every epoch, and the final plots), and what is free."""
    checkpoint = checkpoint_mb(run_dir)
    needed = 3 * checkpoint + PLOTS_MB
    free = free_mb(run_dir)
    each = f"about {checkpoint:.0f} MB each" if checkpoint else "their size not known yet"
    message = (
        f"no space left on the disk of {run_dir}: {free:.0f} MB free, and this run needs about {needed:.0f} MB "
        f"(last.pt and best.pt, {each}, rewritten every epoch, and {PLOTS_MB} MB of end-of-training plots); "
        "free space there or move the results to a larger disk, then run again: the training resumes from "
        "its last saved epoch"
    )
    return {"space_needed_mb": round(needed, 1), "space_free_mb": round(free, 1), "space": message}


def stop_if_still_no_space(attempts: list[dict[str, Any]], run_dir: Path) -> None:
    """Retrying on a disk that is still full only fails again: stop at once, with what is needed."""
    if not attempts or attempts[-1].get("ended") != "no space":
        return
    needed = attempts[-1].get("space_needed_mb") or PLOTS_MB
    if free_mb(run_dir) < needed:
        raise NoSpaceError(f"{space_needed(run_dir)['space']} (the last attempt ran out of space; not retrying)")
