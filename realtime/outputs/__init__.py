"""Outputs of a decision: the overlay drawing, the event log, the window saver and the recorder."""
