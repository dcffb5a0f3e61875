"""The workflow's command-line tools as one command: `campaign <tool> [options]`.

Run from the workflow's folder (where results/ and the config are):

    campaign plan --configfile configs/course.yaml --probe --servers 2 --gpus 4
    campaign status --html results/status.html --every 60
    campaign takeover --configfile configs/course.yaml --shard 1/2
    campaign fetch-weights --configfile configs/course.yaml
    campaign demo-upload demo/raw

`campaign <tool> --help` says what each one does and takes.
"""

from __future__ import annotations

import importlib
import sys

# Each tool: the module whose main(argv) runs it, and what it is for (the first line of `campaign --help`).
TOOLS = {
    "plan": ("campaign.planning.plan", "jobs, memory, hours and makespan before anything is trained"),
    "status": ("campaign.reporting.status_command", "where every configuration stands; the status page"),
    "takeover": ("campaign.adapters.takeover", "run the work of a server that is gone"),
    "fetch-weights": ("campaign.training.fetch_weights", "fetch and record the pretrained checkpoints"),
    "demo-upload": ("campaign.dataset.demo_upload", "write the embedded demo's uploads again"),
}


def usage() -> str:
    lines = [__doc__.strip(), "", "Tools:"]
    lines += [f"  {name:<14} {about}" for name, (_, about) in TOOLS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    tool, *rest = argv
    if tool not in TOOLS:
        print(f"campaign: no tool named {tool!r}; the tools are {', '.join(TOOLS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(TOOLS[tool][0])
    sys.argv[0] = f"campaign {tool}"  # what argparse names in its usage and errors
    return module.main(rest) or 0
