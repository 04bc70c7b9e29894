"""Calibration sets: real windows for INT8 calibration and for the export parity gates (``windows``),
and what they cover (``coverage``)."""
