"""A trained model measured: validation on each split, bootstrap intervals, paired comparisons, speed,
and detections on videos and image folders.
"""
