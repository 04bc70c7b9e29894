"""Capture: camera, file and stream frames (``video_source``), GStreamer pipelines (``gst_capture``);
microphone and file audio (``audio_source``)."""
