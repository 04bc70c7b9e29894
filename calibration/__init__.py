"""Calibration sets: real windows for INT8 calibration and for the export parity gates (``windows``),
face crops and utterances for the expression CNN's and the text model's gates (``crops``,
``utterances``), and what they cover (``coverage``)."""
