"""Before and across runs: probes of each training step, estimates of memory and hours, the plan,
shards over servers, the record of who runs what, and taking over a lost server's work.
"""
