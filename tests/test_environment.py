"""The pinned environment: two locks that differ only in the torch build, installed as pinned; conda envs agree."""

import re
from importlib import metadata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*-?\s*([A-Za-z0-9_.\-]+)==([^\s#;]+)", line)
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


LOCK = pins(ROOT / "requirements.lock")
OLDER_LOCK = pins(ROOT / "requirements-cu126.lock")
# What moves with the torch build: torch itself, its CUDA libraries and its compiler.
TORCH_BUILD = re.compile(r"^(torch|torchvision|triton|nvidia-(?!ml-py).*|cuda-.*)$")


def installed_lock() -> dict[str, str]:
    """The lock whose torch is installed: the suite runs under either."""
    return OLDER_LOCK if metadata.version("torch") == OLDER_LOCK["torch"] else LOCK


def test_lock_pins_every_direct_requirement_at_the_same_version():
    direct = pins(ROOT / "requirements.txt")
    assert direct, "requirements.txt has no pins"
    for name, version in direct.items():
        assert LOCK.get(name) == version, f"{name}: requirements.txt {version}, lock {LOCK.get(name)}"


@pytest.mark.parametrize("env", sorted(p.name for p in (ROOT / "envs").glob("*.yaml")))
def test_conda_envs_agree_with_the_lock(env):
    spec = yaml.safe_load((ROOT / "envs" / env).read_text())
    pip_section = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    for requirement in pip_section:
        name, version = requirement.split("==")
        assert LOCK.get(name.lower()) == version, f"envs/{env}: {requirement} but the lock has {LOCK.get(name.lower())}"


def test_the_older_lock_differs_from_the_main_one_only_in_the_torch_build():
    assert {n: v for n, v in LOCK.items() if not TORCH_BUILD.match(n)} == {
        n: v for n, v in OLDER_LOCK.items() if not TORCH_BUILD.match(n)
    }
    assert (OLDER_LOCK["torch"], OLDER_LOCK["torchvision"]) == ("2.7.1", "0.22.1")
    assert any(n.endswith("-cu12") for n in OLDER_LOCK) and not any(n.endswith("-cu12") for n in LOCK)


@pytest.mark.both_locks
def test_installed_packages_match_the_lock():
    mismatched = {}
    for name, version in installed_lock().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            mismatched[name] = (version, installed)
    assert not mismatched, f"installed versions differ from the lock (pinned, installed): {mismatched}"
