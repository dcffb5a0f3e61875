"""Before and across runs: probes of each training step, estimates of memory and hours, the one
scheduler, packing trainings onto shared GPUs, the plan and why each training runs, shards over
servers, each configuration's work, and the record of who runs what.
"""
