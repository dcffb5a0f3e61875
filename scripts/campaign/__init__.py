"""The workflow's library: everything the rule scripts under scripts/ call.

Rule scripts (scripts/*.py) read the `snakemake` object and hand plain paths
and values to these modules; the command-line tools among them (plan.py,
status.py, fetch_weights.py) run on their own as well.
"""
