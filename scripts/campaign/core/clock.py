"""Files dated in the future stop the plan, before Snakemake acts on their dates.

Snakemake reruns a job whose input is newer than its output; when the input
is dated in the future (a file copied from a server whose clock runs ahead, a
`touch -d 2030`), the rerun job's fresh output is still older than it, and
Snakemake deletes that output as incomplete ("clock skew"): finished
trainings are lost. The plan therefore looks at every file the workflow
reads or wrote first and stops, naming the future-dated ones and the commands
that date them now and mark what was made from them up to date.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Iterable
from pathlib import Path

# A shared folder's times come from the file server's clock; a few seconds
# ahead of this host's is normal.
TOLERANCE_SECONDS = 120
SHOWN = 10


class FutureDatedError(ValueError):
    """Files modified later than now; the message says which and how to date them now."""


def future_dated(roots: Iterable[str | Path], now: float | None = None) -> list[tuple[Path, float]]:
    """(file, modification time) of every file under `roots` dated beyond now + TOLERANCE_SECONDS, newest first."""
    limit = (now if now is not None else time.time()) + TOLERANCE_SECONDS
    found = []
    for root in roots:
        root = Path(root)
        if root.is_file():
            candidates: Iterable[Path] = [root]
        elif root.is_dir():
            candidates = (Path(folder) / name for folder, _, names in os.walk(root) for name in names)
        else:
            continue
        for path in candidates:
            try:
                modified = path.lstat().st_mtime
            except OSError:  # gone meanwhile
                continue
            if modified > limit:
                found.append((path, modified))
    return sorted(found, key=lambda item: -item[1])


def check_no_future_files(roots: Iterable[str | Path], now: float | None = None) -> None:
    """FutureDatedError naming the files dated in the future, the newest date, and the command that dates them now."""
    roots = [str(root) for root in roots]
    found = future_dated(roots, now)
    if not found:
        return
    newest = time.strftime("%Y-%m-%d %H:%M", time.localtime(found[0][1]))
    clock = time.strftime("%Y-%m-%d %H:%M", time.localtime(now if now is not None else time.time()))
    listed = ", ".join(str(path) for path, _ in found[:SHOWN])
    if len(found) <= SHOWN:
        command = "touch -c " + " ".join(shlex.quote(str(path)) for path, _ in found)
    else:
        listed += f" and {len(found) - SHOWN} more"
        existing = " ".join(shlex.quote(root) for root in roots if Path(root).exists())
        command = f"find {existing} -newermt now -exec touch -c {{}} +"
    raise FutureDatedError(
        f"{len(found)} file(s) are dated in the future (the newest {newest}; this machine's clock says {clock}): "
        f"{listed}. Snakemake would rerun the jobs after them and then delete their finished outputs as older "
        f"than their inputs. If this machine's clock is right, date them now: `{command}`; then, where they "
        "did not really change, `snakemake --touch` (with the run's --configfile) marks what was made after "
        "them as up to date instead of redoing it. If the clock is wrong, set it right (NTP) first"
    )
