"""The pinned environment: one lock, installed as pinned, and the conda envs agree with it."""

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


def test_installed_packages_match_the_lock():
    mismatched = {}
    for name, version in LOCK.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            mismatched[name] = (version, installed)
    assert not mismatched, f"installed versions differ from requirements.lock (pinned, installed): {mismatched}"
