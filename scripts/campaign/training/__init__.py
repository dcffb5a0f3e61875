"""One configuration's training: the Ultralytics call and its summary (trainer), the attempts and the
batch policy after running out of memory, checkpoints, the run's lock and disk space, pretrained weights.
"""
