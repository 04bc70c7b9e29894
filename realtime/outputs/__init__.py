"""Outputs of a decision: the overlay drawing, the event log, the window saver, the recorder and the
Jetson load footer (``tegrastats``)."""
