"""Take over the work of a server that is gone, in a folder that several servers share.

    campaign takeover --configfile configs/course.yaml --shard 1/2 -- --cores 8 --resources gpu=4
    campaign takeover --configfile configs/course.yaml --unfinished -- --cores 8 --resources gpu=4
    campaign takeover --unlock-stale

`--shard I/N` runs the shard a lost server was running; `--unfinished`
runs every training that is neither finished nor running on a live server
(with its evaluations, studies and videos). Each interrupted training
resumes from the last epoch its run folder holds.

Nothing is taken from a live server. A server counts as gone only when
nothing of it has moved for `--stale-minutes`: neither the trainings it
started (job record, device monitor samples every second, epochs,
checkpoints) nor the heartbeat its Snakemake run records every 30 s
(campaign/planning/runs.py). Where anything of the work is still alive, the takeover
is refused, naming the host and its last sign of life. Snakemake's lock
files that the gone run left on that work are removed, and only those: a
lock of a live run, or of a run nobody can vouch for that touches other
work, stays.

`--unlock-stale` removes the locks of every run that is gone and nothing
else (what `snakemake --unlock` would do to every run, live ones included).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from campaign.core.layout import WORKFLOW_DIR
from campaign.planning.resolved import command_campaign
from campaign.planning.runs import HEARTBEAT_SECONDS, lock_pairs, owner_of, read_runs
from campaign.planning.shards import campaign_shards, parse_shard
from campaign.reporting.status import config_status


def stale_locks(configs: list[str], runs, stale_after: float) -> tuple[list, list[str]]:
    """Lock pairs to remove for a takeover of `configs`, and what stands in the way (live runs)."""

    remove, blocking = [], []
    for pair in lock_pairs():
        touched = pair.configurations(configs)
        owner = owner_of(pair, runs)
        if owner is not None and owner.alive(stale_after):
            if touched:
                blocking.append(f"{owner.describe()} holds locks on {', '.join(sorted(touched))}")
        elif touched:
            remove.append(pair)
    return remove, blocking


def unlock_stale(stale_after: float) -> int:
    """Remove the locks of runs that are gone; name those whose owner is unknown, and keep them."""

    runs = read_runs()
    removed = kept = 0
    for pair in lock_pairs():
        owner = owner_of(pair, runs)
        if owner is None:
            kept += 1
            print(
                f"kept {', '.join(map(str, pair.files))}: no run record says whose it is. If no Snakemake runs in "
                "this folder on any server (`pgrep -af snakemake` on each), remove these files by hand"
            )
        elif owner.alive(stale_after):
            kept += 1
            print(f"kept the locks of {owner.describe()}")
        else:
            for path in pair.files:
                path.unlink(missing_ok=True)
            removed += 1
            print(f"removed the locks of {owner.describe()}")
    for run in runs:
        if not run.alive(stale_after) and run.path is not None:
            run.path.unlink(missing_ok=True)
    print(f"{removed} stale lock pair(s) removed, {kept} kept")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", default="config.yaml")
    parser.add_argument("--results", default=Path("results"), type=Path)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--shard", help="I/N: the shard the lost server ran")
    what.add_argument("--unfinished", action="store_true", help="every training no live server has finished")
    what.add_argument("--unlock-stale", action="store_true", help="only remove the locks of runs that are gone")
    parser.add_argument("--stale-minutes", type=float, default=10.0, help="gone after this long without a sign of life")
    parser.add_argument("--dry-run", action="store_true", help="say what would be taken over, run nothing")
    parser.add_argument("snakemake_args", nargs="*", help="after --: Snakemake's options (--cores, --resources ...)")
    args = parser.parse_args(argv)
    stale_after = args.stale_minutes * 60

    if stale_after < 2 * HEARTBEAT_SECONDS:
        parser.error(f"--stale-minutes must allow two heartbeats ({2 * HEARTBEAT_SECONDS:g} s) of a live run")
    if args.unlock_stale:
        return unlock_stale(stale_after)

    campaign = command_campaign(parser, args)
    config, configs = campaign.config, campaign.configs
    statuses = {
        name: config_status(args.results, name, run.epochs, run.batch, stale_after) for name, run in configs.items()
    }
    runs = read_runs()
    claimed = {name for run in runs if run.alive(stale_after) for name in run.configs}
    if args.shard:
        shard = parse_shard(args.shard)
        shard_of, _ = campaign_shards(configs, shard[1], config, args.results)
        names = [name for name, index in shard_of.items() if index == shard[0]]
        selection = ["--config", f"shard={args.shard}"]
    else:  # what no live run has finished, runs now, or will run
        names = [n for n, status in statuses.items() if status.state not in ("done", "running") and n not in claimed]
        selection = ["--config", "only=[" + ",".join(names) + "]"]
    running = [
        f"{name} ({statuses[name].device}, {statuses[name].epochs_done} epochs)"
        for name in names
        if statuses[name].state == "running"
    ]
    live_runs = [run for run in runs if run.alive(stale_after) and set(run.configs) & set(names)]
    locks, blocking = stale_locks(names, runs, stale_after)
    if running or live_runs or blocking:
        print("refused: this work is still alive, nothing was taken over:")
        for line in running:
            print(f"  training {line} is running")
        for run in live_runs:
            print(f"  {run.describe()}")
        for line in blocking:
            print(f"  {line}")
        print(f"A server counts as gone after {args.stale_minutes:g} minutes without a sign of life (--stale-minutes).")
        return 2
    if not names:
        print("Nothing to take over: every training is finished or running on a live server.")
        return 0
    print(f"Taking over {len(names)} configuration(s):")
    for name in names:
        status = statuses[name]
        print(f"  {name}: {status.state}, {status.epochs_done}/{status.epochs} epochs {status.note}".rstrip())
    for pair in locks:
        print(f"  removing the gone run's locks {', '.join(map(str, pair.files))}")
    gone = [run for run in runs if not run.alive(stale_after) and set(run.configs) & set(names)]
    for run in gone:
        print(f"  the gone run: {run.describe()}")
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(WORKFLOW_DIR / "Snakefile"),
        "--configfile",
        args.configfile,
    ]
    command += [*selection, "--rerun-incomplete", *args.snakemake_args]
    print("running:", " ".join(command[2:]), flush=True)
    if args.dry_run:
        return 0
    for pair in locks:
        for path in pair.files:
            path.unlink(missing_ok=True)
    for run in gone:
        if run.path is not None:
            run.path.unlink(missing_ok=True)
    return subprocess.run(command).returncode
