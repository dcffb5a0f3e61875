"""GPUs for jobs: leases on whole devices or shares of one, memory caps, and the monitor that samples
them while a job runs.
"""
