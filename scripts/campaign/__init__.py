"""The workflow's library, in rooms named after the pipeline's stages.

- core: the config, where results go, atomic writes, provenance; `rule_job`
  turns a rule's `snakemake` object into plain values (lease, provenance, a
  training's request), so that every other module takes plain paths and values;
- dataset: uploads to a clean dataset and its split lists;
- gpus: leases of whole GPUs or shares, memory caps, the monitor;
- training: one configuration's training, its attempts and checkpoints;
- evaluation: validation, bootstrap, comparisons, speed, videos;
- planning: probes, estimates, the plan, shards, run records, takeover;
- reporting: the summary, figures, status table and page.

Rule scripts (scripts/*.py) are thin: they read the `snakemake` object and
call one function here. The command-line tools are one command, `campaign`
(campaign/cli.py).
"""
