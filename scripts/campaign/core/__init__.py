"""What every stage shares: the config (read, checked, expanded into configurations), where results go,
atomic writes, the records read back, provenance, the clock, Ultralytics' offline settings and argument rules.
"""
