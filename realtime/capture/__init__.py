"""Capture: camera, file and stream frames (``video_source``); microphone and file audio (``audio_source``)."""
