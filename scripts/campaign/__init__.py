"""The workflow's library, in rooms named after the pipeline's stages, on floors that only import downwards.

- core: the config, where results go, atomic writes, records, provenance;
- dataset: uploads to a clean dataset and its split lists;
- gpus: leases of whole GPUs or shares, whether torch can use them, memory caps, the monitor;
- training: one configuration's training, its attempts and checkpoints;
- evaluation: validation, bootstrap, comparisons, speed, videos;
- planning: probes, estimates, the scheduler, packing, the plan, shards, run records;
- reporting: the summary, figures, status table and page;
- adapters: `rule_job` turns a rule's `snakemake` object into plain values (lease,
  provenance, a training's request), so that every other module takes plain paths
  and values; `takeover`, the command that runs a lost server's work.

The floors, top down: cli and adapters; reporting; planning; the stages (dataset,
gpus, training, evaluation); core. pyproject.toml declares them as import
contracts, which the README's test command checks.

Rule scripts (scripts/*.py) are thin: they read the `snakemake` object and
call one function here. The command-line tools are one command, `campaign`
(campaign/cli.py).
"""
