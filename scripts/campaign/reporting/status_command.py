"""`campaign status`: where every configuration stands, as a table, the class's colour matrix and the status page.

Run from the workflow's folder; with --html and --every it rewrites the page
while the campaign runs (docs/running.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from campaign.core.io import atomic_write_text
from campaign.core.layout import RESULTS
from campaign.planning.resolved import command_campaign
from campaign.planning.runs import jobs_at_a_time, read_runs
from campaign.planning.workload import campaign_jobs_seconds, pretraining_left
from campaign.reporting.status import STALE_AFTER_SECONDS, config_status, status_figure, status_table
from campaign.reporting.status_page import campaign_end, estimate_progress, planned_seconds, render_page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Show the state of every configuration of the campaign.")
    parser.add_argument("--configfile", default="config.yaml")
    parser.add_argument("--results", default=RESULTS, type=Path)
    parser.add_argument("--figure", type=Path, help="also draw the colour matrix to this PNG")
    parser.add_argument("--html", type=Path, help="also write the status page (one self-contained HTML file)")
    parser.add_argument("--every", type=float, help="with --html: rewrite the page every this many seconds")
    parser.add_argument(
        "--slots",
        type=int,
        help="trainings at a time, for the campaign's end (default: the GPUs the live runs were given, else 1)",
    )
    parser.add_argument("--logs", type=Path, default=Path("logs"), help="the workflow's logs (job benchmarks)")
    parser.add_argument(
        "--stale-minutes",
        type=float,
        default=STALE_AFTER_SECONDS / 60,
        help="a job on another host that wrote nothing for this long is stale (default %(default)s)",
    )
    args = parser.parse_args(argv)

    campaign = command_campaign(parser, args)
    config, configs = campaign.config, campaign.configs
    stale_after = args.stale_minutes * 60
    costs = {name: run.expected_cost() for name, run in configs.items()}
    after_jobs = campaign.benchmark_stems()
    # The probes (campaign plan --probe) price every job before it runs: an end from the start.
    planned = planned_seconds(configs, config, args.results, args.logs, after_jobs)
    parameters = {name: run.parameters() for name, run in configs.items()}
    refresh = max(1, round(args.every)) if args.html and args.every else None
    while True:
        statuses = [
            config_status(args.results, name, run.epochs, run.batch, stale_after) for name, run in configs.items()
        ]
        # The table, the figure and the page tell one time left and one end, worked out here once.
        progress = estimate_progress(statuses, costs, args.results, args.logs, after_jobs, planned)
        time_left = {p.status.name: p.remaining_seconds for p in progress}
        # The live runs may change between rewrites: read each time.
        at_a_time = (args.slots, args.slots) if args.slots else jobs_at_a_time(read_runs(), stale_after)
        slots, after_slots = at_a_time or (1, 1)
        pretraining = pretraining_left(configs, config, args.results, args.logs)
        closing = campaign_jobs_seconds(args.results, args.logs)
        end = campaign_end(progress, slots, after_slots, pretraining, closing)
        print(status_table(statuses, time_left), end, sep="\n", flush=True)
        if args.figure:
            status_figure(statuses, parameters, args.figure, time_left)
        if args.html:
            atomic_write_text(args.html, render_page(progress, end, refresh=refresh, parameters=parameters))
            print(f"status page: {args.html}", flush=True)
        if not (args.html and args.every):
            break
        time.sleep(args.every)
    if args.figure:
        print(f"figure written to {args.figure}")
    return 0
