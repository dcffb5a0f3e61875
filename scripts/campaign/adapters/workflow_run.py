"""What the Snakefile asks of the run Snakemake is making: the cores and GPUs it was given, its record of live runs.

Like rule_job.py for a job's `snakemake` object, this is the one place that
reads Snakemake's `workflow` object; the rules get plain numbers from it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from snakemake.exceptions import WorkflowError

from campaign.planning.resolved import ResolvedCampaign
from campaign.planning.runs import end_run, explain_stop, notice_stop_requests, other_live_runs_notice, start_run


def given_resource(workflow: Any, name: str) -> int | None:
    """A --resources value (Snakemake wraps some in objects with a `value`), None where not given."""
    given = workflow.global_resources.get(name)
    return getattr(given, "value", given)


def all_cores(workflow: Any) -> int:
    """Every core given with --cores, so that a timing job runs alone on the machine.

    Commands without --cores (e.g. --report) still parse the workflow: 1 there.
    """
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def cores_per_gpu(workflow: Any) -> int:
    """--cores divided by --resources gpu: what one GPU's job gets of the machine."""
    return max(1, all_cores(workflow) // int(given_resource(workflow, "gpu") or 1))


def say_other_live_runs(workflow: Any) -> None:
    """Before Snakemake locks the folder: where another live run holds it, say so.

    Snakemake's advice to `--unlock` on refusing this run would break the other one.
    """
    if workflow.is_main_process and not workflow.dryrun:
        notice = other_live_runs_notice()
        if notice:
            print(notice, file=sys.stderr, flush=True)


def record_campaign_run(workflow: Any, campaign: ResolvedCampaign) -> None:
    """onstart: say who runs what here, with the locks it holds (planning/runs.py)."""
    locks = [os.path.relpath(lock) for lock in getattr(workflow.persistence, "_lockfile", {}).values()]
    gpus = int(given_resource(workflow, "gpu") or 0) // campaign.shares_per_gpu
    start_run(locks, campaign.selected, campaign.part, all_cores(workflow), gpus)
    notice_stop_requests()


def end_campaign_run(failed: bool) -> None:
    """onsuccess and onerror: this run's record goes; a run stopped on request says so."""
    end_run()
    explained = explain_stop() if failed else None
    if explained:
        print(explained, file=sys.stderr, flush=True)
