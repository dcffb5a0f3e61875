"""Every benchmark, one after the other; each prints its table and writes results/benchmarks/<name>.csv.

Run: `.venv/bin/python benchmarks/run_all.py` (about 40 minutes on 2 cores
after a complete demo run, plus the demo itself if it has not run yet).
The GPU check runs too where PyTorch sees a CUDA GPU.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "planning.py",
    "cleaning.py",
    "training_overhead.py",
    "incremental.py",
    "plan_accuracy.py",
    "detect_memory.py",
    "phone_photos.py",
    "resized_accuracy.py",
]


def main() -> int:
    import torch

    scripts = BENCHMARKS + (["gpu_check.py"] if torch.cuda.is_available() else [])
    if "gpu_check.py" not in scripts:
        print("gpu_check.py skipped: no CUDA GPU here (see benchmarks/gpu_check.sh)")
    failed = []
    for script in scripts:
        print(f"\n=== {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)]).returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
