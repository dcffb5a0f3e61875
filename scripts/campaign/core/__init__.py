"""What every stage shares: the config (read, checked, expanded into configurations), where results go,
atomic writes, provenance, the clock, Ultralytics' offline settings, and the bridge from a rule's
`snakemake` object to plain values (rule_job).
"""
