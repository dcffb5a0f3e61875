"""GPUs for jobs: leases on whole devices or shares of one, whether the installed torch can use them,
memory caps, and the monitor that samples them while a job runs.
"""
