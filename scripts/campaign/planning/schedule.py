"""The one scheduler: when a campaign's jobs end on S servers of N GPUs, as Snakemake and the leases run them.

`campaign plan` (its makespan, packed or not), the status page (the
campaign's end) and the shard split all place jobs with `schedule`, so that
the plan and the page can never disagree on the same campaign. Time moves
from event to event (a job ending); at each, the waiting jobs are taken in
Snakemake's order and each starts where the leases would admit it:

- jobs already running first, then the trainings (Snakemake gives them
  priority), longest first; then the jobs after them, each once the jobs it
  follows (`after`: one name or several) have ended;
- a job holds `gpus` whole GPUs of one server (DDP never spans servers);
- with packing (`device_mb` and `max_share` > 1), a one-GPU job whose memory
  need is known shares a GPU with other such jobs while at most `max_share`
  run on it and their needs fit `device_mb` (gpus/leases.py admits them so);
- a job `alone` (a network's timing) needs every GPU of its server free;
- `training_slots` caps the trainings running at once where the campaign
  runs fewer trainings than jobs at a time (a CPU campaign: one training,
  evaluations on every core).

Every job runs at the speed given: what sharing a GPU costs each job is
measured by benchmarks/packing.py, not modelled here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Job:
    name: str
    seconds: float
    gpus: int = 1
    need_mb: float | None = None  # known memory need: it may share a GPU (packing); None: whole GPUs
    after: str | tuple[str, ...] | None = None  # the job(s) it follows (a training, for its evaluations)
    training: bool = True
    alone: bool = False
    running: bool = False  # started already: placed before anything that waits


@dataclass
class Schedule:
    end: float  # the makespan: when the last job ends
    ends: dict[str, float] = field(default_factory=dict)  # by job name
    # Per GPU ("server 1 GPU 0"), the groups of jobs that ran on it at the same time.
    together: dict[str, list[list[str]]] = field(default_factory=dict)


Device = tuple[int, int]  # (server, GPU)


def schedule(
    jobs: list[Job],
    servers: int = 1,
    gpus_per_server: int = 1,
    device_mb: float | None = None,
    max_share: int = 1,
    training_slots: int | None = None,
) -> Schedule:
    devices = [(server, gpu) for server in range(max(servers, 1)) for gpu in range(max(gpus_per_server, 1))]
    holding: dict[Device, list[tuple[float, Job]]] = {device: [] for device in devices}
    names = {job.name for job in jobs}
    waiting = sorted(jobs, key=lambda job: (not job.running, not job.training, -job.seconds, -job.gpus))
    result = Schedule(0.0)
    done: set[str] = set()
    now = 0.0
    while waiting:
        placed = True
        while placed:  # until nothing more starts at this moment (a job of no length ends at once)
            placed = False
            for device in devices:
                done.update(job.name for until, job in holding[device] if until <= now)
                holding[device] = [(until, job) for until, job in holding[device] if until > now]
            for job in list(waiting):
                follows = (job.after,) if isinstance(job.after, str) else job.after or ()
                if any(name in names and name not in done for name in follows):
                    continue
                if job.training and training_slots is not None and _trainings(holding) >= training_slots:
                    continue
                chosen = _admitting(job, devices, holding, device_mb, max_share)
                if chosen is None:
                    continue
                waiting.remove(job)
                placed = True
                result.ends[job.name] = now + job.seconds
                for device in chosen:
                    holding[device].append((now + job.seconds, job))
                    if _shares(job, device_mb, max_share) and len(holding[device]) > 1:
                        label = f"server {device[0] + 1} GPU {device[1]}"
                        result.together.setdefault(label, []).append([held.name for _, held in holding[device]])
        upcoming = [until for device in devices for until, _ in holding[device] if until > now]
        if waiting and not upcoming:
            memory = f"of {device_mb:.0f} MB" if device_mb else f"of the {len(devices)} there are"
            raise ValueError(f"{waiting[0].name} fits no GPU {memory}")
        now = min(upcoming, default=now)
    result.end = max(result.ends.values(), default=0.0)
    return result


def _shares(job: Job, device_mb: float | None, max_share: int) -> bool:
    return device_mb is not None and max_share > 1 and job.need_mb is not None and job.gpus <= 1 and not job.alone


def _trainings(holding: dict[Device, list[tuple[float, Job]]]) -> int:
    return len({job.name for held in holding.values() for _, job in held if job.training})


def _admitting(
    job: Job,
    devices: list[Device],
    holding: dict[Device, list[tuple[float, Job]]],
    device_mb: float | None,
    max_share: int,
) -> list[Device] | None:
    """The GPUs that take `job` now, or None."""
    if _shares(job, device_mb, max_share):
        for device in devices:
            holders = [held for _, held in holding[device]]
            if any(not _shares(held, device_mb, max_share) for held in holders) or len(holders) >= max_share:
                continue
            if sum(held.need_mb for held in holders) + job.need_mb <= device_mb:
                return [device]
        return None
    for server in sorted({device[0] for device in devices}):
        on_server = [device for device in devices if device[0] == server]
        free = [device for device in on_server if not holding[device]]
        need = len(on_server) if job.alone else min(max(job.gpus, 1), len(on_server))
        if len(free) >= need:
            return free[:need]
    return None
