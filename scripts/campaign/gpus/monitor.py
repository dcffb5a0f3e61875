"""Sample the leased devices about once a second while a job runs.

GPU utilisation, memory, power and temperature through NVML; CPU
utilisation and the job's memory through psutil when the job runs on the
CPU. Samples go to a CSV beside the run (the campaign timeline reads it) and,
when a TensorBoard log folder is given, to TensorBoard as well.
"""

from __future__ import annotations

import csv
import logging
import socket
import threading
import time
from pathlib import Path

# The host, because one campaign may train on several servers that each have a gpu0.
FIELDS = ["time", "host", "device", "utilization", "memory_mb", "power_w", "temperature_c"]


class Monitor:
    def __init__(
        self, csv_path: Path, gpu_indices: list[int], interval: float = 1.0, tensorboard_dir: Path | None = None
    ):
        self.csv_path = Path(csv_path)
        self.gpu_indices = gpu_indices
        self.interval = interval
        self.tensorboard_dir = tensorboard_dir
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="device-monitor", daemon=True)

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _samplers(self):
        """One function per device returning (utilization, memory_mb, power_w, temperature_c)."""
        if self.gpu_indices:
            import pynvml

            pynvml.nvmlInit()
            handles = {i: pynvml.nvmlDeviceGetHandleByIndex(i) for i in self.gpu_indices}

            def gpu(handle):
                def sample():
                    power = pynvml.nvmlDeviceGetPowerUsage(handle) / 1000
                    temperature = pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)
                    memory = pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
                    return pynvml.nvmlDeviceGetUtilizationRates(handle).gpu, memory, power, temperature

                return sample

            return {f"gpu{i}": gpu(h) for i, h in handles.items()}
        import psutil

        process = psutil.Process()
        psutil.cpu_percent()  # the first call only starts the measurement

        def cpu():
            memory = process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))
            return psutil.cpu_percent(), memory / 2**20, "", ""

        return {"cpu": cpu}

    def _tensorboard(self):
        """A TensorBoard writer, or None: TensorBoard is a view of the samples, never a reason to lose them."""
        if self.tensorboard_dir is None:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter

            return SummaryWriter(str(self.tensorboard_dir))
        except Exception as error:
            logging.getLogger("campaign").warning("device monitor: no TensorBoard log (%s); the CSV goes on", error)
            return None

    def _run(self) -> None:
        try:
            self._sample_until_stopped()
        except OSError as error:  # a full disk: the training goes on, and says why it has no more samples
            logging.getLogger("campaign").warning("device monitor: no more samples, the disk refused them (%s)", error)

    def _sample_until_stopped(self) -> None:
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.csv_path.exists()
        started = time.time()
        host = socket.gethostname()
        with open(self.csv_path, "a", newline="") as stream:
            table = csv.writer(stream)
            if new:
                table.writerow(FIELDS)
            stream.flush()
            try:
                samplers = self._samplers()
            except Exception as error:  # e.g. no NVML library: the job goes on, without samples
                logging.getLogger("campaign").warning("device monitor: cannot read the devices (%s); no samples", error)
                return
            writer = self._tensorboard()
            while not self._stop.is_set():
                now = time.time()
                for name, sample in samplers.items():
                    try:
                        utilization, memory, power, temperature = sample()
                    except Exception:  # a device read failing must never stop the job
                        continue
                    table.writerow([f"{now:.1f}", host, name, utilization, f"{memory:.0f}", power, temperature])
                    if writer is not None:
                        step = int(now - started)
                        try:
                            writer.add_scalar(f"monitor/{name}/utilization", utilization, step)
                            writer.add_scalar(f"monitor/{name}/memory_mb", memory, step)
                        except Exception as error:
                            logging.getLogger("campaign").warning("device monitor: TensorBoard stopped (%s)", error)
                            writer = None
                stream.flush()
                self._stop.wait(self.interval)
        if writer is not None:
            try:
                writer.close()
            except Exception:  # its folder may be gone; the CSV is complete
                pass
