"""Gather, where pip works, the wheels the GPU check needs on a machine without internet.

The wheelhouse holds what running the workflow needs: the direct
requirements of requirements.txt above its tests-and-development part, and
everything they require, at the versions of requirements.lock. Left out:
PyTorch and CUDA's own packages (the GPU machine has its own build) and what
the target already has: pass `--have FILE`, the output of `python3 -m pip
list --format=freeze` there (bare names, one per line, also do). Wheels are
fetched for the target's Python and platform; a package published only as a
source archive is built into a wheel here, which must then be pure Python.
`gpu_check.sh` installs, there, only the wheels whose package is missing.

A wheel larger than `--compress-over` MiB (Polars' runtime is 54 MiB) is
replaced by its files as pip would install them, in an xz-compressed tar
(`NAME-VERSION.site.tar.xz`, about 60 % of the wheel), for transfers with a
size limit; `on_gpu.sh` unpacks it there.

Run from the project's virtual environment (its package metadata gives the
requirements): `.venv/bin/python benchmarks/gpu_wheels.py --python-version 3.12 --have target.txt`
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
DEVELOPMENT_MARKER = "# Tests and development only"
# The GPU machine's own PyTorch stack is used as it is.
NEVER = re.compile(r"^(torch|torchvision|triton|nvidia-(?!ml-py)[a-z0-9-]+|cuda-[a-z-]+)$")
# Packages that install the same module: one of them on the target is enough.
SAME_MODULE = {"opencv-python": {"opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"}}
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path, stop: str | None = None) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if stop and line.startswith(stop):
            break
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            found[canonical(name.split("[", 1)[0])] = version.split(";", 1)[0].strip()
    return found


def runtime_closure(roots: list[str], python_version: str) -> set[str]:
    """The roots and every package they require on the target Python (no extras)."""
    environment = {"python_version": python_version, "python_full_version": f"{python_version}.0", "extra": ""}
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requirements = requires(name) or []
        except PackageNotFoundError as error:
            message = f"{name} is not installed here: run this from the project's virtual environment"
            raise SystemExit(message) from error
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                pending.append(canonical(requirement.name))
    return seen


def installed_names(listing: Path | None) -> set[str]:
    if listing is None:
        return set()
    names = set()
    for line in listing.read_text().splitlines():
        name = re.split(r"[=<>@ ]", line.strip(), maxsplit=1)[0]
        if name and not name.startswith("#"):
            names.add(canonical(name))
    return names


def fetch(name: str, version: str, wheelhouse: Path, python_version: str) -> str:
    """Download the wheel for the target, or build one here; say which."""
    pip = [sys.executable, "-m", "pip", "-q"]
    download = [*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", python_version]
    download += ["--implementation", "cp", *(f"--platform={p}" for p in PLATFORMS), "-d", str(wheelhouse)]
    if subprocess.run([*download, f"{name}=={version}"], capture_output=True).returncode == 0:
        return "downloaded"
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(wheelhouse), f"{name}=={version}"], capture_output=True, text=True
    )
    if built.returncode != 0:
        raise SystemExit(f"{name}=={version}: no wheel for the target and no build here:\n{built.stderr[-2000:]}")
    wheel = next(wheelhouse.glob(f"{name.replace('-', '_')}-{version}-*.whl"), None)
    if wheel is None or not wheel.name.endswith("-none-any.whl"):
        raise SystemExit(f"{name}=={version}: built {wheel}, which is not pure Python: it would not run there")
    return "built here (pure Python)"


def compress(wheel: Path) -> Path:
    """Replace a wheel by an xz-compressed tar of the files it installs (a wheel's contents are its install)."""
    import lzma
    import tarfile
    import zipfile

    name, version = wheel.name.split("-")[:2]
    tree = wheel.with_name(f"{name}-{version}.site.tar.xz")
    with zipfile.ZipFile(wheel) as archive, tarfile.open(tree, "w:xz", preset=6 | lzma.PRESET_DEFAULT) as out:
        for member in archive.infolist():
            if member.is_dir():
                continue
            info = tarfile.TarInfo(member.filename)
            info.size = member.file_size
            info.mode = (member.external_attr >> 16) & 0o777 or 0o644
            with archive.open(member) as stream:
                out.addfile(info, stream)
    wheel.unlink()
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheelhouse", type=Path, default=ROOT / ".whl")
    parser.add_argument("--python-version", default="3.12", help="the GPU machine's Python")
    parser.add_argument("--have", type=Path, help="`pip list --format=freeze` of the GPU machine")
    parser.add_argument("--compress-over", type=float, default=32, help="MiB above which a wheel is xz-compressed")
    args = parser.parse_args()

    locked = pins(ROOT / "requirements.lock")
    roots = list(pins(ROOT / "requirements.txt", stop=DEVELOPMENT_MARKER))
    have = installed_names(args.have)
    wanted = sorted(
        name
        for name in runtime_closure(roots, args.python_version)
        if not NEVER.match(name) and name not in have and not SAME_MODULE.get(name, set()) & have
    )
    unlocked = [name for name in wanted if name not in locked]
    if unlocked:
        raise SystemExit(f"required but not in requirements.lock: {', '.join(unlocked)}; regenerate the lock")
    args.wheelhouse.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        print(f"{name}=={locked[name]}: {fetch(name, locked[name], args.wheelhouse, args.python_version)}", flush=True)
    for wheel in sorted(args.wheelhouse.glob("*.whl")):
        if wheel.stat().st_size > args.compress_over * 2**20:
            print(f"{wheel.name}: {wheel.stat().st_size / 2**20:.1f} MiB, compressed to {compress(wheel).name}")
    size = sum(path.stat().st_size for path in args.wheelhouse.glob("*.whl"))
    size += sum(path.stat().st_size for path in args.wheelhouse.glob("*.site.tar.xz"))
    print(f"{len(wanted)} packages, {size / 2**20:.1f} MiB in {args.wheelhouse}")


if __name__ == "__main__":
    main()
