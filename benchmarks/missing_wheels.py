"""Print the wheel files of a folder whose distributions this Python does not have yet."""

import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path


def missing(wheelhouse: Path) -> list[Path]:
    wheels = []
    for wheel in sorted(wheelhouse.glob("*.whl")):
        name = wheel.name.split("-")[0]  # wheel names escape '-' in the distribution name as '_'
        try:
            distribution(name)
        except PackageNotFoundError:
            wheels.append(wheel)
    return wheels


if __name__ == "__main__":
    print(" ".join(str(wheel) for wheel in missing(Path(sys.argv[1]))))
