"""The course's campaign rehearsed on one real GPU, in about 9 minutes: what the plan predicts against what happens.

Makes real-size data on the spot and runs the workflow itself (Snakemake,
leases, monitor) on it, in stages that each keep their figures even where a
later one fails or the time runs out:

1. data: phone photos (4032x3024 JPEGs, a quarter EXIF-rotated portraits,
   the tests' generator) in three classes and three group folders, and a
   1080p video; the workflow's cleaning, split lists and copy shrunk to
   320 px (and, for stage 5, the same upload cleaned without the copy);
2. probes: `plan.py --probe` for YOLOv5 n/s/m/l at batch 64 and 96, 320 px,
   freeze 0, on the GPU (CUDA reserved memory, seconds per image), and the
   plan table against an 8 GB card (`--device-memory-mb 8192`);
3. prediction against reality: the four batch-64 configurations trained for
   a few epochs: seconds per epoch and peak memory, predicted and measured;
4. a real CUDA out-of-memory: the configuration the probes put furthest
   over 8 GB, trained with `gpu.emulate_memory_mb: 8192`: the batch the
   policy ended at, as train.json records it;
5. utilisation: YOLOv5s at batch 64 reading the 320 px copy (stage 3) and
   the full-size photos (`dataset.resize: false`): GPU utilisation from the
   workflow's monitor (mean, p90), images per second, seconds per epoch;
6. speed at 320 px: batch 1 and 32, fp32 and fp16, from the speed study;
7. detections on the video (the detect step), where time is left.

Shared leases (several trainings on one GPU) are not part of the workflow
yet, so packing is not measured.

Writes to --out (default benchmarks/gpu/<date>_<gpu>_course/): course.json
(everything), course.md (the tables), probes.csv, plan.txt, trainings.csv,
speed.csv and logs.tar.gz (every job's log).

On the GPU machine: `sh benchmarks/on_gpu.sh .whl benchmarks/gpu_course.py`
(benchmarks/README.md says how the wheelhouse is made). Rehearse on a CPU:
`.venv/bin/python benchmarks/gpu_course.py --allow-cpu --preset quick`.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from common import ROOT, SNAKEMAKE, git_commit, machine

CLASSES = ["glasses", "lentils", "ring"]
GROUPS = ["groupA", "groupB", "groupC"]
CARD_MB = 8192  # the course's GPUs
# Each stage after the data, and about how long it needs on one H200 (a stage is skipped when less is left).
STAGES = {"data": 0, "probes": 300, "trainings": 120, "out_of_memory": 40, "utilisation": 50, "speed": 30, "detect": 30}

PRESETS: dict[str, dict[str, Any]] = {
    "full": {
        "photos": 300,
        "photo_size": (4032, 3024),
        "video_seconds": 20,
        "video_size": (1920, 1080),
        "video_fps": 30,
        "models": ["yolov5n", "yolov5s", "yolov5m", "yolov5l"],
        "batches": [64, 96],
        "imgsz": 320,
        "epochs": 3,
        "speed": {"batch": [1, 32], "half": True, "warmup": 5, "repeats": 20, "images": 32},
    },
    # The same stages in a minute or two on two CPU cores.
    "quick": {
        "photos": 24,
        "photo_size": (640, 480),
        "video_seconds": 2,
        "video_size": (320, 180),
        "video_fps": 10,
        "models": ["yolov5n", "yolov5s"],
        "batches": [8, 16],
        "imgsz": 64,
        "epochs": 2,
        "speed": {"batch": [1, 4], "half": True, "warmup": 1, "repeats": 2, "images": 8},
    },
}


# ---------------------------------------------------------------- data


def _write_photo(raw: str, index: int, size: tuple[int, int]) -> int:
    from campaign.dataset.synthetic import PORTRAIT, phone_photo

    data, annotations = phone_photo(seed=index, size=size, orientation=PORTRAIT if index % 4 == 3 else 1)
    group = Path(raw) / GROUPS[index % len(GROUPS)]
    (group / f"IMG_{index:04d}.JPG").write_bytes(data)
    (group / f"IMG_{index:04d}.txt").write_text(
        "".join(f"{CLASSES.index(a.name)} {a.xc:.6f} {a.yc:.6f} {a.w:.6f} {a.h:.6f}\n" for a in annotations)
    )
    return len(data)


def _write_video(path: str, seconds: int, size: tuple[int, int], fps: int) -> float:
    from campaign.dataset.synthetic import write_table_video

    started = time.perf_counter()
    write_table_video(Path(path), frames=seconds * fps, size=size, fps=fps)
    return time.perf_counter() - started


def campaign_config(preset: dict, raw: Path, video: Path, resize: bool, allow_cpu: bool, models=None) -> dict:
    """The course's config (configs/course.yaml), at the preset's sizes, for this rehearsal."""
    config = yaml.safe_load((ROOT / "configs" / "course.yaml").read_text())
    config.pop("weights_checksums", None)
    config["dataset"].update(raw=str(raw), resize=resize)
    config["splits"]["lock"] = "splits.lock.csv"
    config["weights"] = {}  # no COCO checkpoints offline: trained from scratch (time and memory are the same)
    config["pretrain"] = {"models": []}
    defaults = config["campaign"]["defaults"]
    defaults.update(model=preset["models"][0], batch=preset["batches"][0], imgsz=preset["imgsz"])
    defaults.update(epochs=preset["epochs"], pretrained=False)
    config["campaign"]["matrix"] = {"model": models or preset["models"], "batch": preset["batches"]}
    config["evaluation"]["splits"] = ["test"]
    config["speed"] = {**config["speed"], **preset["speed"], "formats": ["pytorch"]}
    config["study"] = {"imgsz": [preset["imgsz"]], "split": "val", "configs": []}
    config["detect"] = {"configs": [config_name(preset, "yolov5s", preset["batches"][0])], "sources": [str(video)]}
    config["gpu"].update(require=not allow_cpu, monitor_seconds=0.5)
    return config


def config_name(preset: dict, model: str, batch: int) -> str:
    return f"{model}_b{batch}_img{preset['imgsz']}_freeze0"


# ---------------------------------------------------------------- running the workflow


class Rehearsal:
    """The run's folders, clock and record; every stage adds to `result` and the record is rewritten."""

    def __init__(self, out: Path, scratch: Path, preset: dict, cores: int, budget_s: float, allow_cpu: bool):
        self.out, self.scratch, self.preset, self.cores = out, scratch, preset, cores
        self.allow_cpu = allow_cpu
        self.deadline = time.monotonic() + budget_s
        self.copy = scratch / "copy"  # workdir reading the 320 px copy
        self.full = scratch / "fullsize"  # workdir reading the full-size photos
        self.result: dict[str, Any] = {"stages": {}}
        self.given_probes: Path | None = None

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def save(self) -> None:
        (self.out / "course.json").write_text(json.dumps(self.result, indent=2, default=str) + "\n")

    def snakemake(self, workdir: Path, targets: list[str], configfile: str = "config.yaml") -> float:
        """Run the workflow in `workdir` on `targets`; its wall seconds. Raises with the output's end on failure."""
        command = [*SNAKEMAKE, *targets, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--configfile", configfile]
        command += ["--cores", str(self.cores), "--resources", "gpu=1"]
        if importlib.util.find_spec("pulp") is None:  # a wheelhouse may leave out Snakemake's optional ILP solver
            command += ["--scheduler", "greedy"]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        (workdir / "snakemake.log").open("a").write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"snakemake {' '.join(targets)} failed:\n{(result.stdout + result.stderr)[-3000:]}")
        return seconds

    def stage(self, name: str, needs_s: float, function) -> None:
        """Run one stage and keep what it measured, or why it did not run."""
        print(f"== {name} ({self.left():.0f} s left)", flush=True)
        if self.left() < needs_s:
            self.result["stages"][name] = {"skipped": f"{self.left():.0f} s left, the stage needs about {needs_s} s"}
        else:
            started = time.perf_counter()
            try:
                self.result["stages"][name] = {"ran": True, **function()}
            except Exception as error:  # kept, not fatal: the later stages are still worth their figures
                traceback.print_exc()
                self.result["stages"][name] = {"error": f"{type(error).__name__}: {error}"[-4000:]}
            self.result["stages"][name]["seconds"] = round(time.perf_counter() - started, 1)
        self.save()
        print(json.dumps(self.result["stages"][name], default=str)[:2000], flush=True)

    # -------------------------------------------------------- stages

    def data(self) -> dict:
        preset = self.preset
        raw, video = self.scratch / "uploads", self.scratch / "videos" / "course.mp4"
        for group in GROUPS:
            (raw / group).mkdir(parents=True, exist_ok=True)
            (raw / group / "classes.txt").write_text("\n".join(CLASSES) + "\n")
        started = time.perf_counter()
        with ProcessPoolExecutor(self.cores) as pool:
            film = pool.submit(
                _write_video, str(video), preset["video_seconds"], preset["video_size"], preset["video_fps"]
            )
            sizes = list(
                pool.map(
                    _write_photo,
                    [str(raw)] * preset["photos"],
                    range(preset["photos"]),
                    [preset["photo_size"]] * preset["photos"],
                )
            )
            video_seconds = film.result()
        made = time.perf_counter() - started
        for workdir, resize in ((self.copy, True), (self.full, False)):
            workdir.mkdir(parents=True, exist_ok=True)
            models = None if resize else ["yolov5s"]
            config = campaign_config(preset, raw, video, resize, self.allow_cpu, models)
            (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        with ThreadPoolExecutor(2) as both:  # CPU work only, before anything is timed on the GPU
            prepared = dict(
                zip(
                    ("copy", "fullsize"),
                    both.map(lambda w: round(self.snakemake(w, ["prepare"]), 1), (self.copy, self.full)),
                )
            )
        if self.given_probes:  # measured in an earlier run of this script: the plan's figures without probing again
            target = self.copy / "results" / "plan" / "probes.csv"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.given_probes, target)
        summary = (self.copy / "results" / "dataset" / "cleaning_summary.txt").read_text()
        splits = {
            s: len((self.copy / "results" / "dataset" / f"{s}.txt").read_text().split())
            for s in ("train", "val", "test")
        }
        return {
            "photos": preset["photos"],
            "photo_size": preset["photo_size"],
            "photo_mb_mean": round(statistics.fmean(sizes) / 2**20, 2),
            "video": "{} s, {}x{}, {} fps".format(preset["video_seconds"], *preset["video_size"], preset["video_fps"]),
            "generated_seconds": round(made, 1),
            "video_seconds_to_write": round(video_seconds, 1),
            "prepare_seconds": prepared,
            "split_images": splits,
            "cleaning_summary": summary,
        }

    def probes(self) -> dict:
        command = [sys.executable, str(ROOT / "scripts" / "campaign" / "plan.py"), "--configfile", "config.yaml"]
        command += ["--probe", "--gpus", "1", "--servers", "1", "--cores", str(self.cores)]
        command += ["--device-memory-mb", str(CARD_MB)]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=self.copy, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        (self.out / "plan.txt").write_text(result.stdout + ("\n" + result.stderr[-3000:] if result.returncode else ""))
        if result.returncode != 0:
            raise RuntimeError(f"plan.py --probe failed:\n{result.stderr[-3000:]}")
        rows = read_csv(self.copy / "results" / "plan" / "probes.csv")
        write_csv(self.out / "probes.csv", rows)
        return {"seconds_with_plan": round(seconds, 1), "rows": rows, "plan": result.stdout}

    def estimates(self) -> dict[str, Any]:
        """The plan's estimate of every configuration against an 8 GB card, from the probes."""
        from campaign.core.configurations import expand_campaign
        from campaign.planning.estimate import estimate, read_probes
        from campaign.planning.probe import probe_settings

        config = yaml.safe_load((self.copy / "config.yaml").read_text())
        probes = read_probes(self.copy / "results" / "plan" / "probes.csv")
        images = {
            s: len((self.copy / "results" / "dataset" / f"{s}.txt").read_text().split()) for s in ("train", "val")
        }
        found = {}
        for name, run in expand_campaign(config["campaign"]).items():
            rows = probes.get(probe_settings(run)[0])
            if rows:
                found[name] = (
                    estimate(name, run.parameters(), rows, images["train"], images["val"], CARD_MB),
                    rows,
                    images,
                )
        return found

    def trainings(self) -> dict:
        names = [config_name(self.preset, model, self.preset["batches"][0]) for model in self.preset["models"]]
        seconds = self.snakemake(self.copy, [f"results/train/{name}/train.json" for name in names])
        estimates = self.estimates()
        rows = []
        for name in names:
            row = training_row(self.copy, name)
            est, probe_rows, images = estimates[name]
            timed = next(r for r in probe_rows if r["fits"] == "True" and int(r["batch"]) == est.batch_per_gpu)
            predicted_epoch = images["train"] * float(timed["train_seconds_per_image"]) + images["val"] * float(
                timed["val_seconds_per_image"] or 0
            )
            row.update(
                predicted_seconds_per_epoch=round(predicted_epoch, 2),
                epoch_error_pct=pct(row["seconds_per_epoch_steady"], predicted_epoch),
                predicted_peak_memory_mb=est.memory_mb,
                memory_error_pct=pct(row["peak_memory_mb"], est.memory_mb),
            )
            rows.append(row)
        write_csv(self.out / "trainings.csv", rows)
        return {"snakemake_seconds": round(seconds, 1), "rows": rows}

    def out_of_memory(self) -> dict:
        estimates = self.estimates()
        over = {n: e for n, (e, _, _) in estimates.items() if e.memory_mb is not None and e.memory_mb > CARD_MB}
        pool = over or {n: e for n, (e, _, _) in estimates.items() if e.memory_mb is not None}
        # The largest need over the card: the clearest case (on a CPU rehearsal, simply the largest).
        name = max(pool, key=lambda n: pool[n].memory_mb)
        config = yaml.safe_load((self.copy / "config.yaml").read_text())
        config["gpu"]["emulate_memory_mb"] = CARD_MB
        (self.copy / "config_8gb.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        error = None
        try:
            self.snakemake(self.copy, [f"results/train/{name}/train.json"], configfile="config_8gb.yaml")
        except RuntimeError as failed:  # the policy may stop the training: that is a result too
            error = str(failed)[-1500:]
        folder = self.copy / "results" / "train" / name
        summary = json.loads((folder / "train.json").read_text()) if (folder / "train.json").is_file() else None
        log = self.copy / "logs" / "train" / f"{name}.log"
        said = (
            [line.strip() for line in log.read_text().splitlines() if "out of memory" in line.lower()]
            if log.is_file()
            else []
        )
        return {
            "config": name,
            "probed_need_mb": round(pool[name].memory_mb, 1),
            "over_the_card": name in over,
            "largest_batch_that_fits_per_plan": pool[name].largest_batch,
            "snakemake_error": error,
            "train_json": summary
            and {
                k: summary.get(k)
                for k in (
                    "batch_configured",
                    "batch_used",
                    "batch_reduced",
                    "epochs_by_batch",
                    "peak_memory_mb",
                    "epochs_run",
                    "attempts",
                )
            },
            "log_lines_out_of_memory": said[:10],
        }

    def utilisation(self) -> dict:
        name = config_name(self.preset, "yolov5s", self.preset["batches"][0])
        for workdir in (self.copy, self.full):  # the copy's arm is stage 3's training where that ran
            self.snakemake(workdir, [f"results/train/{name}/train.json"])
        rows = {"copy": training_row(self.copy, name), "full_size_photos": training_row(self.full, name)}
        copy, full = rows["copy"]["seconds_per_epoch_mean"], rows["full_size_photos"]["seconds_per_epoch_mean"]
        return {
            "config": name,
            "rows": rows,
            "full_over_copy_seconds_per_epoch": round(full / copy, 2) if copy else None,
        }

    def speed(self) -> dict:
        names = [config_name(self.preset, model, self.preset["batches"][0]) for model in self.preset["models"]]
        # Those trained by the earlier stages (all four after stage 3; YOLOv5s alone when only stage 5 ran).
        names = [n for n in names if (self.copy / "results" / "train" / n / "train.json").is_file()] or names
        seconds = self.snakemake(self.copy, [f"results/speed/{name}.csv" for name in names])
        rows = []
        for name in names:
            for row in read_csv(self.copy / "results" / "speed" / f"{name}.csv"):
                rows.append({"config": name, **row})
        write_csv(self.out / "speed.csv", rows)
        return {"snakemake_seconds": round(seconds, 1), "rows": rows}

    def detect(self) -> dict:
        from campaign.evaluation.video import detect_source_names

        name = config_name(self.preset, "yolov5s", self.preset["batches"][0])
        config = yaml.safe_load((self.copy / "config.yaml").read_text())
        source = next(iter(detect_source_names(config["detect"]["sources"])))
        seconds = self.snakemake(self.copy, [f"results/detect/{name}/{source}.mp4"])
        frames = self.preset["video_seconds"] * self.preset["video_fps"]
        job = read_tsv(self.copy / "logs" / "detect" / f"{name}_{source}.benchmark.tsv")
        job_seconds = float(job[0]["s"]) if job else None
        return {
            "config": name,
            "frames": frames,
            "snakemake_seconds": round(seconds, 1),
            "job_seconds": job_seconds,
            "frames_per_second": round(frames / job_seconds, 1) if job_seconds else None,
            "job_max_rss_mb": float(job[0]["max_rss"]) if job else None,
        }


# ---------------------------------------------------------------- reading the workflow's outputs


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def read_tsv(path: Path) -> list[dict[str, str]]:
    """A Snakemake benchmark file's rows (s, max_rss, ...); none where the job wrote none."""
    if not path.is_file():
        return []
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream, delimiter="\t"))


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def pct(measured: float | None, predicted: float | None) -> float | None:
    """Error of the prediction, in percent of what was measured (negative: predicted too low)."""
    if not measured or predicted is None:
        return None
    return round(100 * (predicted - measured) / measured, 1)


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def training_row(workdir: Path, name: str) -> dict[str, Any]:
    """One training's epochs, memory, batch and device samples, from the workflow's own outputs."""
    folder = workdir / "results" / "train" / name
    summary = json.loads((folder / "train.json").read_text())
    times = [float(r["time"]) for r in read_csv(folder / "results.csv")]
    epochs = [b - a for a, b in zip([0.0, *times], times)]
    samples = [s for s in read_csv(folder / "monitor.csv") if s["utilization"]]
    utilisation = [float(s["utilization"]) for s in samples]
    memory = [float(s["memory_mb"]) for s in samples if s["memory_mb"]]
    train_images = len((workdir / "results" / "dataset" / "train.txt").read_text().split())
    steady = statistics.median(epochs[1:]) if len(epochs) > 1 else epochs[0]
    return {
        "config": name,
        "epochs": len(epochs),
        "seconds_per_epoch": [round(e, 2) for e in epochs],
        "seconds_per_epoch_mean": round(statistics.fmean(epochs), 2),
        "seconds_per_epoch_steady": round(steady, 2),  # after the first (warm-up, cuDNN autotuning)
        "train_images_per_second": round(train_images / steady, 1),
        "batch_used": summary.get("batch_used"),
        "peak_memory_mb": summary.get("peak_memory_mb"),
        "device": summary.get("device"),
        "workers": summary.get("workers"),
        "monitor_samples": len(utilisation),
        "gpu_utilisation_mean": round(statistics.fmean(utilisation), 1) if utilisation else None,
        "gpu_utilisation_p90": quantile(utilisation, 0.9),
        "device_memory_mb_max_nvml": max(memory, default=None),
        "job_seconds": round(summary.get("job_seconds", 0), 1),
    }


# ---------------------------------------------------------------- facts and report


CONTEXT_PROBE = """
import json, torch, pynvml
torch.zeros(1, device="cuda")
pynvml.nvmlInit()
handle = pynvml.nvmlDeviceGetHandleByIndex(0)
used = pynvml.nvmlDeviceGetMemoryInfo(handle).used
torch.backends.cudnn.benchmark = True
x = torch.nn.Conv2d(3, 16, 3).cuda()(torch.zeros(1, 3, 64, 64, device="cuda"))
torch.cuda.synchronize()
after = pynvml.nvmlDeviceGetMemoryInfo(handle).used
print(json.dumps({"device_used_mb_with_context": used / 2**20, "device_used_mb_after_cudnn_conv": after / 2**20,
                  "torch_reserved_mb": torch.cuda.memory_reserved() / 2**20}))
"""


def device_facts(allow_cpu: bool) -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {"machine": machine(), "commit": git_commit(), "torch": torch.__version__}
    facts["cuda"] = torch.version.cuda
    for package in ("ultralytics", "snakemake", "polars", "nvidia-ml-py"):
        try:
            facts[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            facts[package] = None
    if torch.cuda.is_available():
        import pynvml

        pynvml.nvmlInit()
        facts["driver"] = pynvml.nvmlSystemGetDriverVersion()
        facts["gpu"] = torch.cuda.get_device_name(0)
        facts["gpu_memory_mb"] = torch.cuda.get_device_properties(0).total_memory // 2**20
        pynvml.nvmlShutdown()
        # What a process costs on the card before PyTorch allocates anything: a real 8 GB card holds this too.
        probe = subprocess.run([sys.executable, "-c", CONTEXT_PROBE], capture_output=True, text=True)
        facts["cuda_context"] = json.loads(probe.stdout) if probe.returncode == 0 else probe.stderr[-500:]
    elif allow_cpu:
        facts["gpu"] = "none (CPU rehearsal)"
    return facts


def render(result: dict) -> str:
    facts, stages = result["device"], result["stages"]
    lines = [
        f"# The course rehearsed on {facts.get('gpu')} ({result['preset']})",
        "",
        f"{facts['machine']}; driver {facts.get('driver', '-')}, CUDA {facts.get('cuda')}, torch {facts['torch']}, "
        f"ultralytics {facts.get('ultralytics')}, snakemake {facts.get('snakemake')}; commit {facts['commit']}; "
        f"{result['date']}; whole run {result.get('wall_seconds')} s",
        "",
    ]
    for name, stage in stages.items():
        lines.append(f"## {name}")
        lines.append("")
        if not stage.get("ran"):
            lines += [f"Not measured: {stage.get('skipped') or stage.get('error')}", ""]
            continue
        if name == "probes":
            lines += ["```", stage["plan"].rstrip(), "```", ""]
        elif name in ("trainings",):
            keys = [
                "config",
                "batch_used",
                "seconds_per_epoch",
                "seconds_per_epoch_steady",
                "predicted_seconds_per_epoch",
                "epoch_error_pct",
                "peak_memory_mb",
                "predicted_peak_memory_mb",
                "memory_error_pct",
                "gpu_utilisation_mean",
                "gpu_utilisation_p90",
            ]
            lines += table(stage["rows"], keys)
        elif name == "utilisation":
            rows = [{"data": k, **v} for k, v in stage["rows"].items()]
            keys = [
                "data",
                "seconds_per_epoch",
                "seconds_per_epoch_mean",
                "train_images_per_second",
                "gpu_utilisation_mean",
                "gpu_utilisation_p90",
                "monitor_samples",
                "workers",
            ]
            lines += table(rows, keys)
            lines += [f"full-size / copy, seconds per epoch: {stage['full_over_copy_seconds_per_epoch']}", ""]
        elif name == "speed":
            keys = ["config", "batch", "half", "inference_ms", "latency_ms", "latency_ms_p90", "throughput_ips"]
            lines += table(stage["rows"], keys)
        else:
            shown = {k: v for k, v in stage.items() if k not in ("ran", "rows")}
            lines += ["```", json.dumps(shown, indent=2, default=str), "```", ""]
    return "\n".join(lines) + "\n"


def table(rows: list[dict], keys: list[str]) -> list[str]:
    lines = ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="default: benchmarks/gpu/<date>_<gpu>_course")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full")
    parser.add_argument("--budget-s", type=float, default=540, help="stages that would not end in time are skipped")
    parser.add_argument("--scratch", type=Path, help="working folder (default: a new one under /tmp)")
    parser.add_argument("--allow-cpu", action="store_true", help="rehearse without a GPU")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"a subset, in this order: {','.join(STAGES)}")
    parser.add_argument("--probes", type=Path, help="probes.csv of an earlier run on this GPU: not probed again")
    args = parser.parse_args()

    import tempfile

    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        sys.exit("gpu_course: torch sees no CUDA GPU here (give --allow-cpu --preset quick to rehearse on the CPU)")
    started = time.perf_counter()
    facts = device_facts(args.allow_cpu)
    label = facts["gpu"].split(" (")[0].replace(" ", "-") if torch.cuda.is_available() else "cpu"
    date = time.strftime("%Y-%m-%d")
    out = args.out or ROOT / "benchmarks" / "gpu" / f"{date}_{label}_course"
    out.mkdir(parents=True, exist_ok=True)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="gpu-course-"))
    run = Rehearsal(out, scratch, PRESETS[args.preset], args.cores, args.budget_s, args.allow_cpu)
    run.result.update(
        device=facts,
        preset=args.preset,
        date=date,
        settings=PRESETS[args.preset],
        packing="not measured: shared leases are not part of the workflow yet",
    )
    run.given_probes = args.probes
    if args.probes:
        run.result["probes_from"] = str(args.probes)
    chosen = args.stages.split(",")
    unknown = sorted(set(chosen) - set(STAGES))
    if unknown:
        sys.exit(f"gpu_course: unknown stage(s) {', '.join(unknown)}; the stages are {', '.join(STAGES)}")
    run.stage("data", 0, run.data)
    for name, needs_s in STAGES.items():
        if name in chosen and name != "data":
            run.stage(name, needs_s, getattr(run, name))
    run.result["wall_seconds"] = round(time.perf_counter() - started, 1)
    run.save()
    (out / "course.md").write_text(render(run.result))
    with tarfile.open(out / "logs.tar.gz", "w:gz") as archive:
        for workdir in (run.copy, run.full):
            for path in [workdir / "snakemake.log", workdir / "config.yaml", *sorted((workdir / "logs").rglob("*"))]:
                if path.is_file():
                    archive.add(path, arcname=str(path.relative_to(scratch)))
    print(render(run.result))
    print(f"kept in {out}")


if __name__ == "__main__":
    main()
