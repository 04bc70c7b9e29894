"""Calibration sets for INT8 quantization (arrives with the export issue)."""
