"""From the class's uploads to a clean dataset: reading each group's layout, checking labels and images,
cleaning, split lists, resized copies, and the generated images the demo pretrains on.
"""
