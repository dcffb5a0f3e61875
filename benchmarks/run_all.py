"""Every benchmark, one after the other; each prints its table and writes results/benchmarks/<name>.csv.

Run: `.venv/bin/python benchmarks/run_all.py` (55 minutes on 2 cores on 2026-12-05
after a complete demo run, plus the demo itself if it has not run yet).
The GPU check and the course's GPU rehearsal run too where PyTorch sees a CUDA GPU.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "demo_times.py",
    "planning.py",
    "cleaning.py",
    "training_overhead.py",
    "incremental.py",
    "plan_accuracy.py",
    "probe_steps.py",
    "detect_memory.py",
    "phone_photos.py",
    "resized_accuracy.py",
    "campaign_eta.py",
    "packing.py",
]


def main() -> int:
    import torch

    gpu = ["gpu_check.py", "gpu_course.py"]
    scripts = BENCHMARKS + (gpu if torch.cuda.is_available() else [])
    if not torch.cuda.is_available():
        print("gpu_check.py and gpu_course.py skipped: no CUDA GPU here (see benchmarks/on_gpu.sh)")
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
