"""The workflow's library: everything the rule scripts under scripts/ call.

Rule scripts (scripts/*.py) read the `snakemake` object: a job that runs a
model hands it to `rule_job`, the one layer that turns it into plain values
(lease, provenance, a training's request); every other module takes plain
paths and values. `layout` knows where things are under results/. The
command-line tools among the modules (plan.py, status.py, fetch_weights.py)
run on their own as well.
"""
