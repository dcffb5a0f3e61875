"""What people read: the summary table, the figures, the status table and the status page."""
